"""The gates of ``make test``'s ship step that are plain code: migration safety, the CI path
filter, action pinning and the lock's agreement with the tested versions."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bazaar_devtools.affected import suites_for
from bazaar_devtools.check import SUITES
from bazaar_devtools.migration_safety import lint_project
from bazaar_devtools.platform import ROOT
from bazaar_devtools.ship import lock_disagreements, unpinned_actions

DROP_PHONE = """from django.db import migrations


class Migration(migrations.Migration):
{mark}
    dependencies = [("profiles", "0002_support_group_permissions")]

    operations = [migrations.RemoveField(model_name="profile", name="phone")]
"""


@pytest.fixture
def profile_service_copy(tmp_path: Path) -> Path:
    """The profiles project copied aside, so a fixture migration never touches the real one."""
    copy = tmp_path / "profile_service"
    shutil.copytree(ROOT / "profile_service", copy, ignore=shutil.ignore_patterns("*.egg-info", "__pycache__", "var"))
    return copy


# The linter reads PostgreSQL's SQL (SQLite rebuilds tables: every change reads as a drop).
@pytest.mark.postgres
def test_a_column_drop_fails_the_migration_check(profile_service_copy: Path) -> None:
    migration = profile_service_copy / "profile_service" / "profiles" / "migrations" / "0003_drop_phone.py"
    migration.write_text(DROP_PHONE.format(mark=""))

    result = lint_project("profile_service", project_dir=profile_service_copy)

    assert result.returncode == 1, result.stdout + result.stderr
    assert "(profiles, 0003_drop_phone)... ERR" in result.stdout
    assert "DROPPING columns (table: profiles_profile, column: phone)" in result.stdout


# The linter reads PostgreSQL's SQL (SQLite rebuilds tables: every change reads as a drop).
@pytest.mark.postgres
def test_a_drop_marked_as_the_contract_step_passes(profile_service_copy: Path) -> None:
    migration = profile_service_copy / "profile_service" / "profiles" / "migrations" / "0003_drop_phone.py"
    mark = "# migration-safety: contract — release 0.3 stopped reading Profile.phone"
    migration.write_text(DROP_PHONE.format(mark=mark))

    result = lint_project("profile_service", project_dir=profile_service_copy)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "(profiles, 0003_drop_phone)... IGNORE" in result.stdout


# The linter reads PostgreSQL's SQL (SQLite rebuilds tables: every change reads as a drop).
@pytest.mark.postgres
def test_the_real_migrations_are_safe_for_a_rolling_deploy() -> None:
    result = lint_project("catalog_service")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "Erroneous migrations: 0/" in result.stdout


def test_a_service_change_runs_its_suite_the_contracts_and_e2e() -> None:
    expected = [name for name in ("catalog", "contracts", "e2e") if name in {s.name for s in SUITES}]
    assert suites_for(["catalog_service/catalog_service/products/services.py"]) == expected
    assert suites_for(["tests/order_service/test_orders_api.py"]) == [
        name for name in ("orders", "contracts", "e2e") if name in {s.name for s in SUITES}
    ]


def test_a_common_change_runs_everything_and_docs_run_nothing() -> None:
    assert suites_for(["common/bazaar_common/http.py"]) == [suite.name for suite in SUITES]
    assert suites_for(["requirements/constraints.txt"]) == [suite.name for suite in SUITES]
    assert suites_for(["docs/runbooks/scaling.md", "README.md", "charts/bazaar/values.yaml"]) == []


def test_actions_must_be_pinned_to_a_commit_sha() -> None:
    workflow = """
      - uses: actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683 # v4.2.2
      - uses: actions/setup-python@v5
      - name: x
        uses: docker/build-push-action@v6.18.0
      - uses: ./.github/actions/local
    """
    assert unpinned_actions(workflow) == ["actions/setup-python@v5", "docker/build-push-action@v6.18.0"]


def test_the_image_lock_must_match_the_tested_versions() -> None:
    lock = "celery==5.7.0 \\\n    --hash=sha256:ab\nDjango==5.2.18 \\\n    --hash=sha256:cd\nvine==5.1.0 \\\n"
    constraints = "Django==5.2.19\ncelery==5.7.0\n"
    assert lock_disagreements(lock, constraints) == [
        "runtime.lock has Django==5.2.18, constraints.txt 5.2.19 (make lock)"
    ]
    real = lock_disagreements(
        (ROOT / "requirements" / "runtime.lock").read_text(), (ROOT / "requirements" / "constraints.txt").read_text()
    )
    assert real == []
