"""The checks of what ships, run by ``make test`` (``bazaar_devtools.check``) as the ``ship`` step:

* ``chart``: ``charts/check.sh`` — helm lint, helm template, kubernetes-validate --strict for two
  Kubernetes versions, tests/charts/check_chart.py and the values the schema must refuse. Helm
  comes from an npm package (see that script): without ``npm`` (or ``HELM=``) it cannot run; a
  developer's run says so and counts it as skipped, CI (``CI=true``) fails;
* ``workflows``: every file of ``.github/workflows`` against the GitHub workflow schema
  (check-jsonschema's vendored copy), and every ``uses:`` pinned to a full commit SHA;
* ``docker``: hadolint on the Dockerfile, and requirements/runtime.lock agreeing with
  requirements/constraints.txt (the images install what the tests ran with);
* ``migration-safety``: bazaar_devtools.migration_safety (migrations safe for a rolling deploy).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from bazaar_devtools.platform import ROOT

BIN = Path(sys.executable).parent
USES = re.compile(r"^\s*(?:-\s*)?uses:\s*([^\s#]+)", re.MULTILINE)
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")
REQUIREMENT = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", re.MULTILINE)


def _run(command: list[str], **kwargs: object) -> bool:
    print(f"\n$ {' '.join(command)}", flush=True)
    return subprocess.run(command, cwd=ROOT, **kwargs).returncode == 0  # type: ignore[call-overload]


def _cannot_run(step: str, needs: str) -> bool | None:
    """A step this machine cannot run: NOT RUN (None), announced, on a laptop; a failure in CI,
    which must run every step rather than pass one unchecked."""
    message = f"{step}: needs {needs}"
    if os.environ.get("CI"):
        print(f"\nFAIL {message}")
        return False
    print(f"\n[{step}] NOT RUN — {message}; CI runs it.")
    return None


def chart() -> bool | None:
    """True/False, or None when helm cannot be had on this machine (announced)."""
    if not (os.environ.get("HELM") or shutil.which("npm") or _helm_cached()):
        return _cannot_run("chart", "npm (helm comes from an npm package) or HELM=/path/to/helm")
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    return _run(["bash", "charts/check.sh"], env=env)


def _helm_cached() -> bool:
    """charts/check.sh's tool cache already holds helm (fetched by an earlier run)."""
    default = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "bazaar-chart-tools"
    cache = Path(os.environ.get("BAZAAR_TOOLS_CACHE") or default)
    return (cache / "layer" / "helm" / "helm").exists()


def unpinned_actions(text: str) -> list[str]:
    """``uses:`` references not pinned to a commit SHA (local ./actions and docker:// excepted)."""
    return [ref for ref in USES.findall(text) if not ref.startswith(("./", "docker://")) and not PINNED.match(ref)]


def workflows() -> bool:
    files = sorted(str(path.relative_to(ROOT)) for path in (ROOT / ".github" / "workflows").glob("*.y*ml"))
    if not files:
        print("\nFAIL workflows: no workflow files")
        return False
    ok = _run([str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *files])
    for name in files:
        for ref in unpinned_actions((ROOT / name).read_text()):
            print(f"FAIL {name}: {ref} is not pinned to a commit SHA")
            ok = False
    return ok


def lock_disagreements(lock: str, constraints: str) -> list[str]:
    """Packages pinned in both files at different versions."""
    pinned = {name.lower().replace("_", "-"): version for name, version in REQUIREMENT.findall(constraints)}
    problems = []
    for name, version in REQUIREMENT.findall(lock):
        expected = pinned.get(name.lower().replace("_", "-"))
        if expected is not None and expected != version:
            problems.append(f"runtime.lock has {name}=={version}, constraints.txt {expected} (make lock)")
    return problems


def docker() -> bool:
    ok = _run([str(BIN / "hadolint"), "Dockerfile"])
    requirements = ROOT / "requirements"
    for problem in lock_disagreements(
        (requirements / "runtime.lock").read_text(), (requirements / "constraints.txt").read_text()
    ):
        print(f"FAIL {problem}")
        ok = False
    return ok


def migration_safety() -> bool | None:
    """The migration linter reads the SQL of PostgreSQL, the production engine; SQLite's table
    rebuilds would read as drops. Without a PostgreSQL ``DATABASE_URL`` the step says NOT RUN (and
    fails in CI, which always has one)."""
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        return _cannot_run("migration-safety", "PostgreSQL (DATABASE_URL=postgres://…)")
    return _run([sys.executable, "-m", "bazaar_devtools.migration_safety"])


def alerts() -> bool | None:
    """``promtool check rules`` and ``promtool test rules`` on charts/bazaar/files/alerts.

    promtool comes with Debian's ``prometheus`` package (``.ci/run`` installs it). Without it the
    step says NOT RUN — and fails in CI — rather than passing unchecked.
    """
    promtool = shutil.which("promtool")
    alerts_dir = ROOT / "charts" / "bazaar" / "files" / "alerts"
    if promtool is None:
        return _cannot_run("alerts", "promtool (apt-get install prometheus)")
    rules = sorted(str(path) for path in alerts_dir.glob("*.yaml"))
    tests = sorted(str(path) for path in (alerts_dir / "tests").glob("*.yml"))
    if not rules or not tests:
        print("\nFAIL alerts: no rule files or no promtool unit tests")
        return False
    return _run([promtool, "check", "rules", *rules]) and _run([promtool, "test", "rules", *tests])


STEPS = {
    "chart": chart,
    "workflows": workflows,
    "docker": docker,
    "migration-safety": migration_safety,
    "alerts": alerts,
}
