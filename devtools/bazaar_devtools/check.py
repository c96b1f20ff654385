"""``make test``: every check the platform has, in one command.

1. ruff (lint and format check), then mypy with the django and DRF stubs (``mypy`` step: each
   Django project type-checked with its own settings, so every model and setting is its own);
2. ``makemigrations --check`` for every Django project (a model change without its migration fails);
   the public OpenAPI document built, validated and compared with its snapshot
   (:mod:`bazaar_devtools.openapi`; ``make openapi`` rewrites the snapshot);
3. what ships (bazaar_devtools.ship): the Helm chart, the workflow files, the Dockerfile and image
   lock, migrations safe for a rolling deploy;
4. each suite of ``tests/`` with its own service's settings, on PostgreSQL when ``DATABASE_URL``
   points at a server (one test database per service), else SQLite;
5. the end-to-end suite, which starts the real platform as processes, on the Redis broker; beside
   it the tests marked ``consistency`` once more on RabbitMQ (``E2E_BROKER=rabbitmq``, a vhost and
   platform of the run's own), when a RabbitMQ server answers ``rabbitmqctl`` (CI starts one).

The pytest suites run ``CHECK_JOBS`` (default 2) at a time, each one's output printed whole.

Redis: ``REDIS_URL`` when set (each suite on its own database index), else an embedded
redis-server started for the run. Prints one closing line ``check: N passed, N failed``.
"""

from __future__ import annotations

import argparse
import functools
import os
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar
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
_PRINTING = threading.Lock()
T = TypeVar("T")


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


def run(
    command: list[str], *, env: dict[str, str] | None = None, cwd: Path = ROOT, output: IO[str] | None = None
) -> int:
    """Run ``command``; its output goes to this process's stdout, or to ``output`` when given."""
    print(f"\n$ {' '.join(command)}", file=output or sys.stdout, flush=True)
    return subprocess.run(
        command, env=env, cwd=cwd, stdout=output, stderr=subprocess.STDOUT if output else None
    ).returncode


def lint() -> bool:
    ruff = str(BIN / "ruff")
    return run([ruff, "check", "."]) == 0 and run([ruff, "format", "--check", "."]) == 0


def typecheck(env: dict[str, str]) -> bool:
    """mypy over every package, each Django project with its own settings (the django plugin reads
    models and settings from them); the shared and tooling packages with the gateway's. Errors in
    ``bazaar_common`` show in every run that imports it, so one clean run means clean everywhere."""
    mypy = str(BIN / "mypy")

    def project(spec: Any, output: IO[str]) -> bool:
        paths = [f"{spec.directory}/{spec.package}"]
        if spec.package == "gateway":
            paths += ["common/bazaar_common", "devtools/bazaar_devtools"]
        project_env = env | {"DEBUG": "1", "DJANGO_SETTINGS_MODULE": f"{spec.package}.config.settings"}
        command = [mypy, "--cache-dir", str(ROOT / ".mypy_cache" / spec.name), *paths]
        return run(command, env=project_env, output=output) == 0

    # The projects side by side (each has its own cache), like the suites.
    width = int(os.environ.get("CHECK_JOBS", "2"))
    results = side_by_side([(spec.name, functools.partial(project, spec)) for spec in ALL_PROJECTS], width=width)
    return all(ok for _, ok in results)


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
    suite: Suite,
    base_env: dict[str, str],
    report_dir: Path,
    extra: list[str],
    *,
    select: str | None = None,
    output: IO[str] | None = None,
) -> Outcome:
    out = output or sys.stdout
    if not (ROOT / suite.path).exists():
        print(f"\n(no {suite.path} yet)", file=out)
        return Outcome()
    env = base_env | {"DEBUG": "1", "REDIS_URL": redis_with_db(base_env["REDIS_URL"], suite.redis_db)}
    # The slowest tests named in every run: what to look at when the run grows long.
    args = [str(BIN / "pytest"), suite.path, f"--ds={suite.settings}", "-q", "-p", "no:cacheprovider", "--durations=12"]
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
        print(f"\n[{suite.name}] SQLite: deselecting tests marked 'postgres' (they run in CI).", file=out)
        deselect.append("postgres")
    if deselect or select:
        args += ["-m", " and ".join(([select] if select else []) + [f"not {marker}" for marker in deselect])]
    junit = report_dir / f"{suite.name}.xml"
    # A temporary directory of its own: suites run side by side, and pytest's shared default
    # (/tmp/pytest-of-<user>) deletes older runs' directories, a running platform's included.
    basetemp = report_dir / f"{suite.name}-tmp"
    started = time.monotonic()
    run([*args, f"--junitxml={junit}", f"--basetemp={basetemp}", *extra], env=env, output=output)
    outcome = junit_counts(junit)
    print(
        f"[{suite.name}] {outcome.passed} passed, {outcome.failed} failed, {outcome.skipped} skipped "
        f"in {time.monotonic() - started:.0f}s",
        file=out,
        flush=True,
    )
    return outcome


def side_by_side(jobs: list[tuple[str, Callable[[IO[str]], T]]], *, width: int) -> list[tuple[str, T]]:
    """Run the jobs ``width`` at a time, each writing to a file of its own; print each one's
    output whole, as it finishes (an interleaved log would be unreadable)."""
    results: dict[str, T] = {}

    def one(name: str, job: Callable[[IO[str]], T]) -> None:
        with tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as output:
            try:
                results[name] = job(output)
            finally:
                output.seek(0)
                with _PRINTING:
                    sys.stdout.write(output.read())
                    sys.stdout.flush()

    with ThreadPoolExecutor(max_workers=max(1, width)) as pool:
        for future in [pool.submit(one, name, job) for name, job in jobs]:
            future.result()
    return [(name, results[name]) for name, _ in jobs]


def suite_jobs(
    suites: list[Suite], env: dict[str, str], report_dir: Path, extra: list[str]
) -> list[tuple[str, Callable[[IO[str]], Outcome]]]:
    """One job per suite; the e2e suite brings its RabbitMQ run of the consistency set, when a
    RabbitMQ server answers (a platform of its own: the two run side by side)."""
    jobs: list[tuple[str, Callable[[IO[str]], Outcome]]] = [
        (suite.name, functools.partial(_suite_job, suite, env, report_dir, extra, None)) for suite in suites
    ]
    if any(suite.name == "e2e" for suite in suites):
        if RabbitVhost.available():
            rabbit_env = env | {"E2E_BROKER": "rabbitmq"}
            jobs.append(
                (
                    E2E_RABBITMQ.name,
                    functools.partial(_suite_job, E2E_RABBITMQ, rabbit_env, report_dir, extra, "consistency"),
                )
            )
        else:
            print("\n[e2e-rabbitmq] no RabbitMQ server here: the consistency set runs on Redis only (CI runs both).")
    return jobs


def _suite_job(
    suite: Suite, env: dict[str, str], report_dir: Path, extra: list[str], select: str | None, output: IO[str]
) -> Outcome:
    return run_suite(suite, env, report_dir, extra, select=select, output=output)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    steps = ["lint", "mypy", "migrations", "openapi", *ship.STEPS, *(suite.name for suite in SUITES)]
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
        if wanted("mypy") and not typecheck(env):
            problems.append("mypy")
        if wanted("migrations") and not migrations_are_complete(env):
            problems.append("migrations")
        if wanted("openapi"):
            started = time.monotonic()
            passed = run([str(BIN / "python"), "-m", "bazaar_devtools.openapi"], env=env) == 0
            print(f"[openapi] {'passed' if passed else 'FAILED'} in {time.monotonic() - started:.0f}s", flush=True)
            total.passed += passed
            total.failed += not passed
            if not passed:
                problems.append("openapi")
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
            # The service suites two at a time, then the end-to-end suite beside its RabbitMQ run
            # (each mostly waits on its platform): CHECK_JOBS=1 runs everything one after another.
            width = int(os.environ.get("CHECK_JOBS", "2"))
            units = [suite for suite in SUITES if wanted(suite.name) and suite.name != "e2e"]
            e2e = [suite for suite in SUITES if wanted(suite.name) and suite.name == "e2e"]
            outcomes = side_by_side(suite_jobs(units, env, Path(report_dir), options.pytest_args), width=width)
            # Two platforms side by side only on PostgreSQL: on SQLite files they contend for locks.
            e2e_width = width if env.get("DATABASE_URL", "").startswith("postgres") else 1
            outcomes += side_by_side(suite_jobs(e2e, env, Path(report_dir), options.pytest_args), width=e2e_width)
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
    # Lint, type and migration failures count as failed checks too, so a red run never reads as green.
    failed = total.failed + sum(1 for problem in problems if problem in ("lint", "mypy", "migrations"))
    print(f"check: {total.passed} passed, {failed} failed, {total.skipped} skipped")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
