"""``make test``: every check the platform has, in one command.

1. ruff (lint and format check);
2. ``makemigrations --check`` for every Django project (a model change without its migration fails);
3. what ships (bazaar_devtools.ship): the Helm chart, the workflow files, the Dockerfile and image
   lock, migrations safe for a rolling deploy;
4. each suite of ``tests/`` with its own service's settings, on PostgreSQL when ``DATABASE_URL``
   points at a server (one test database per service), else SQLite;
5. the end-to-end suite, which starts the real platform as processes, on the Redis broker; then
   the tests marked ``consistency`` once more on RabbitMQ (``E2E_BROKER=rabbitmq``, a vhost of the
   run's own), when a RabbitMQ server answers ``rabbitmqctl`` (CI starts one).

Redis: ``REDIS_URL`` when set (each suite on its own database index), else an embedded
redis-server started for the run. Prints one closing line ``check: N passed, N failed``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from bazaar_devtools import ship
from bazaar_devtools.platform import (
    ALL_PROJECTS,
    ROOT,
    EmbeddedRedis,
    RabbitVhost,
    database_base_name,
    with_database_name,
)

BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class Suite:
    name: str
    path: str
    settings: str
    database: str  # suffix of the test database name
    redis_db: int


SUITES = (
    Suite("common", "tests/common", "catalog_service.config.settings", "common", 9),
    Suite("gateway", "tests/gateway", "gateway.config.settings", "gateway", 10),
    Suite("auth", "tests/auth_service", "auth_service.config.settings", "auth", 11),
    Suite("catalog", "tests/catalog_service", "catalog_service.config.settings", "catalog", 12),
    Suite("orders", "tests/order_service", "order_service.config.settings", "orders", 13),
    Suite("profiles", "tests/profile_service", "profile_service.config.settings", "profiles", 14),
    Suite("e2e", "tests/e2e", "gateway.config.settings", "e2e", 8),
)


# The consistency set again, with RabbitMQ as the broker (same platform tests, other transport).
E2E_RABBITMQ = Suite("e2e-rabbitmq", "tests/e2e", "gateway.config.settings", "e2e", 8)


def redis_with_db(url: str, index: int) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{index}", parts.query, parts.fragment))


def run(command: list[str], *, env: dict[str, str] | None = None, cwd: Path = ROOT) -> int:
    print(f"\n$ {' '.join(command)}", flush=True)
    return subprocess.run(command, env=env, cwd=cwd).returncode


def lint() -> bool:
    ruff = str(BIN / "ruff")
    return run([ruff, "check", "."]) == 0 and run([ruff, "format", "--check", "."]) == 0


def migrations_are_complete(env: dict[str, str]) -> bool:
    ok = True
    with tempfile.TemporaryDirectory() as var_dir:
        for spec in ALL_PROJECTS:
            project_env = env | {
                "DEBUG": "1",
                "BAZAAR_VAR_DIR": var_dir,
                "DJANGO_SETTINGS_MODULE": f"{spec.package}.config.settings",
            }
            project_env.pop("DATABASE_URL", None)
            command = [sys.executable, "manage.py", "makemigrations", "--check", "--dry-run"]
            ok = run(command, env=project_env, cwd=spec.path) == 0 and ok
    return ok


@dataclass
class Outcome:
    passed: int = 0
    failed: int = 0
    skipped: int = 0


def junit_counts(path: Path) -> Outcome:
    if not path.exists():
        return Outcome(failed=1)
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else list(root)
    outcome = Outcome()
    for suite in suites:
        tests = int(suite.get("tests", 0))
        failed = int(suite.get("failures", 0)) + int(suite.get("errors", 0))
        skipped = int(suite.get("skipped", 0))
        outcome.failed += failed
        outcome.skipped += skipped
        outcome.passed += tests - failed - skipped
    return outcome


def run_suite(
    suite: Suite, base_env: dict[str, str], report_dir: Path, extra: list[str], *, select: str | None = None
) -> Outcome:
    if not (ROOT / suite.path).exists():
        print(f"\n(no {suite.path} yet)")
        return Outcome()
    env = base_env | {"DEBUG": "1", "REDIS_URL": redis_with_db(base_env["REDIS_URL"], suite.redis_db)}
    args = [str(BIN / "pytest"), suite.path, f"--ds={suite.settings}", "-q", "-p", "no:cacheprovider"]
    # The long fault soak has its own target (make soak); it is never part of make test.
    deselect = ["soak"] if suite.path == "tests/e2e" else []
    database_url = base_env.get("DATABASE_URL", "")
    if database_url.startswith("postgres"):
        base = database_base_name(database_url)
        env["DATABASE_URL"] = with_database_name(database_url, f"{base}_{suite.database}")
    else:
        env.pop("DATABASE_URL", None)
        env["BAZAAR_VAR_DIR"] = tempfile.mkdtemp(prefix=f"bazaar-{suite.name}-")
        # Concurrency tests (and the e2e test that faults a PostgreSQL server through a proxy)
        # need a real database server; they run wherever PostgreSQL is given (CI always gives
        # it). Announced, not hidden.
        print(f"\n[{suite.name}] SQLite: deselecting tests marked 'postgres' (they run in CI).")
        deselect.append("postgres")
    if deselect or select:
        args += ["-m", " and ".join(([select] if select else []) + [f"not {marker}" for marker in deselect])]
    junit = report_dir / f"{suite.name}.xml"
    started = time.monotonic()
    run([*args, f"--junitxml={junit}", *extra], env=env)
    outcome = junit_counts(junit)
    print(
        f"[{suite.name}] {outcome.passed} passed, {outcome.failed} failed, {outcome.skipped} skipped "
        f"in {time.monotonic() - started:.0f}s",
        flush=True,
    )
    return outcome


def rabbitmq_consistency(env: dict[str, str], report_dir: Path, extra: list[str]) -> list[tuple[str, Outcome]]:
    if not RabbitVhost.available():
        print("\n[e2e-rabbitmq] no RabbitMQ server here: the consistency set ran on Redis only (CI runs both).")
        return []
    outcome = run_suite(E2E_RABBITMQ, env | {"E2E_BROKER": "rabbitmq"}, report_dir, extra, select="consistency")
    return [(E2E_RABBITMQ.name, outcome)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    steps = ["lint", "migrations", *ship.STEPS, *(suite.name for suite in SUITES)]
    parser.add_argument("--only", help="comma list of: " + ", ".join(steps) + " (ship = all four ship steps)")
    parser.add_argument("pytest_args", nargs="*", help="extra arguments for pytest (after --)")
    options = parser.parse_args()
    selected = set(options.only.split(",")) if options.only else None
    if selected and "ship" in selected:
        selected |= set(ship.STEPS)

    def wanted(name: str) -> bool:
        return selected is None or name in selected

    env = dict(os.environ)
    embedded: EmbeddedRedis | None = None
    if not env.get("REDIS_URL"):
        embedded = EmbeddedRedis().start()
        env["REDIS_URL"] = embedded.url
        print(f"Using an embedded redis-server at {embedded.url}")
    print(f"Database: {'PostgreSQL' if env.get('DATABASE_URL', '').startswith('postgres') else 'SQLite'}")
    total = Outcome()
    problems: list[str] = []
    try:
        if wanted("lint") and not lint():
            problems.append("lint")
        if wanted("migrations") and not migrations_are_complete(env):
            problems.append("migrations")
        for name, step in ship.STEPS.items():
            if not wanted(name):
                continue
            started = time.monotonic()
            result = step()
            print(
                f"[{name}] {'passed' if result else 'NOT RUN' if result is None else 'FAILED'} "
                f"in {time.monotonic() - started:.0f}s",
                flush=True,
            )
            if result is None:
                total.skipped += 1
            elif result:
                total.passed += 1
            else:
                total.failed += 1
                problems.append(name)
        with tempfile.TemporaryDirectory() as report_dir:
            for suite in SUITES:
                if not wanted(suite.name):
                    continue
                outcomes = [(suite.name, run_suite(suite, env, Path(report_dir), options.pytest_args))]
                if suite.name == "e2e":
                    outcomes += rabbitmq_consistency(env, Path(report_dir), options.pytest_args)
                for name, outcome in outcomes:
                    total.passed += outcome.passed
                    total.failed += outcome.failed
                    total.skipped += outcome.skipped
                    if outcome.failed:
                        problems.append(name)
    finally:
        if embedded:
            embedded.stop()
    if problems:
        print(f"\nFAILED: {', '.join(problems)}")
    # Lint and migration failures count as failed checks too, so a red run never reads as green.
    failed = total.failed + sum(1 for problem in problems if problem in ("lint", "migrations"))
    print(f"check: {total.passed} passed, {failed} failed, {total.skipped} skipped")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
