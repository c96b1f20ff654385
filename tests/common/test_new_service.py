"""``make service NAME=…`` (bazaar_devtools.new_service): a generated service passes its own checks.

Generated into a copy of the repository: lint and format, its migration check, its tests, and the
Helm chart with it (lint, both renders, tests/charts/check_chart.py: values cover what its code
reads, its Deployments, Jobs, NetworkPolicy peers, ServiceAccount, ConfigMap); the launcher and
the test runner know it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bazaar_devtools.new_service import ROOT

BIN = Path(sys.executable).parent


def _copy_repository(target: Path) -> None:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


def _run(command: list[str], cwd: Path, **env: str) -> str:
    variables = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE")}
    done = subprocess.run(command, cwd=cwd, env=variables | env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("repository")
    _copy_repository(root)
    _run([sys.executable, "-m", "bazaar_devtools.new_service", "reviews", "--root", str(root), "--no-install"], root)
    return root


def test_the_generated_service_is_laid_out_like_the_others_and_lints_clean(generated):
    app = generated / "review_service" / "review_service" / "reviews"
    for name in ("models.py", "services.py", "selectors.py", "apis.py", "permissions.py", "admin.py", "urls.py"):
        assert (app / name).is_file(), name
    assert (app / "migrations" / "0001_initial.py").is_file()
    assert (generated / "review_service" / "README.md").is_file()

    _run([str(BIN / "ruff"), "check", "."], generated)
    _run([str(BIN / "ruff"), "format", "--check", "."], generated)


def test_its_migrations_are_complete_and_its_tests_pass(generated, tmp_path):
    env = {"DEBUG": "1", "BAZAAR_VAR_DIR": str(tmp_path), "PYTHONPATH": str(generated / "review_service")}
    _run([sys.executable, "manage.py", "makemigrations", "--check", "--dry-run"], generated / "review_service", **env)

    pytest = [str(BIN / "pytest"), "tests/review_service", "--ds=review_service.config.settings", "-q"]
    out = _run([*pytest, "-p", "no:cacheprovider"], generated, **env)

    assert "3 passed" in out


def test_the_launcher_and_the_runner_know_it(generated):
    probe = (
        "from bazaar_devtools.platform import BY_NAME; from bazaar_devtools.check import SUITES; "
        "from bazaar_devtools.affected import suites_for; "
        "print(BY_NAME['reviews'].package, [s.name for s in SUITES if s.name == 'reviews'], "
        "suites_for(['review_service/x.py']))"
    )
    out = _run([sys.executable, "-c", probe], generated, PYTHONPATH=str(generated / "devtools"))

    assert out.split("[", 1)[0].strip() == "review_service"
    assert "['reviews']" in out
    assert "'reviews'" in out.rsplit("[", 1)[1]


def test_the_chart_renders_and_passes_its_checks_with_it(generated, tmp_path):
    helm = _run(["bash", "-c", 'source charts/tools.sh >/dev/null && echo "$HELM"'], generated).split()[-1]
    _run([helm, "lint", "--strict", "charts/bazaar"], generated)
    default, full = tmp_path / "default__bazaar.yaml", tmp_path / "full__prod-bazaar.yaml"
    default.write_text(_run([helm, "template", "bazaar", "charts/bazaar", "--namespace", "bazaar"], generated))
    full_values = ["-f", "charts/bazaar/ci/full-values.yaml"]
    full.write_text(_run([helm, "template", "prod", "charts/bazaar", "--namespace", "shop", *full_values], generated))

    out = _run([sys.executable, "tests/charts/check_chart.py", str(default), str(full)], generated)

    assert "0 failure(s)" in out
    rendered = default.read_text()
    for name in ("bazaar-reviews", "bazaar-reviews-worker", "bazaar-reviews-beat", "bazaar-reviews-migrate"):
        assert f"name: {name}\n" in rendered, name
