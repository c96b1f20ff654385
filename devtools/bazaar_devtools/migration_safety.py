"""Migrations safe for a rolling deploy: ``make test``'s ``migration-safety`` step.

During a rollout the previous release's pods keep serving against the schema the new release's
migration Job has just applied (charts/bazaar/templates/migrations.yaml). A migration that drops or
renames a column or table, or adds a NOT NULL column without a database default, breaks them.
django-migration-linter reads each migration's SQL (``sqlmigrate``, PostgreSQL's rules — the
production engine) and reports such operations.

A migration that is deliberately backward incompatible — the *contract* step of expand/contract,
shipped only after no running release reads what it removes (docs/migrations.md) — is marked in its
file with a line::

    # migration-safety: contract — <why no running release needs what this removes>

and then passes. Nothing else silences the check.

    python -m bazaar_devtools.migration_safety                 # every project
    python -m bazaar_devtools.migration_safety --project catalog_service
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from bazaar_devtools.platform import (
    ALL_PROJECTS,
    database_base_name,
    ensure_postgres_database,
    with_database_name,
)

MARK = re.compile(r"^#\s*migration-safety:\s*contract\b\s*\S", re.MULTILINE)


def own_migration_apps() -> dict[str, Path]:
    """App label → migrations directory, for every app of this repository in INSTALLED_APPS."""
    from django.apps import apps

    found = {}
    for config in apps.get_app_configs():
        directory = Path(config.path) / "migrations"
        # Django's own apps and third-party ones (installed into site-packages) are not ours.
        if directory.is_dir() and "site-packages" not in directory.parts:
            found[config.label] = directory
    return found


def marked_as_contract(directories: dict[str, Path]) -> list[str]:
    return [
        path.stem
        for directory in directories.values()
        for path in directory.glob("[0-9]*.py")
        if MARK.search(path.read_text())
    ]


def lint_this_project() -> bool:
    """Inside one project's settings (a subprocess per project: one settings module per process)."""
    import django

    django.setup()
    logging.getLogger("django_migration_linter").setLevel(logging.WARNING)
    from django_migration_linter import MigrationLinter

    directories = own_migration_apps()
    linter = MigrationLinter(
        include_apps=list(directories),
        ignore_name=marked_as_contract(directories),
        analyser_string="postgresql",
        # An initial migration creates what no running release knows yet: always safe.
        ignore_initial_migrations=True,
        no_cache=True,
        quiet=["ok"],
    )
    linter.lint_all_migrations()
    linter.print_summary()
    return not linter.has_errors


def lint_project(package: str, *, project_dir: Path | None = None) -> subprocess.CompletedProcess:
    """Lint one project; ``project_dir``: a copy of it to lint instead (put first on the path)."""
    spec = next(spec for spec in ALL_PROJECTS if spec.package == package)
    env = dict(os.environ)
    if project_dir is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(project_dir), env.get("PYTHONPATH")]))
    with tempfile.TemporaryDirectory() as var_dir:
        project_env = env | {
            "DEBUG": "1",
            "BAZAAR_VAR_DIR": var_dir,
            "DJANGO_SETTINGS_MODULE": f"{spec.package}.config.settings",
        }
        # sqlmigrate renders the SQL of the database it is given: PostgreSQL's (the production
        # engine) when a server is there, into an empty database of its own; else SQLite's, whose
        # table rebuilds can read as drops (CI always gives PostgreSQL).
        database_url = project_env.pop("DATABASE_URL", "")
        if database_url.startswith("postgres"):
            lint_database = with_database_name(database_url, f"{database_base_name(database_url)}_migrationlint")
            ensure_postgres_database(lint_database)
            project_env["DATABASE_URL"] = lint_database
        return subprocess.run(
            [sys.executable, "-m", "bazaar_devtools.migration_safety", "--inside"],
            cwd=project_dir or spec.path,
            env=project_env,
            capture_output=True,
            text=True,
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--project", help="one project package, e.g. catalog_service")
    options = parser.parse_args()
    if options.inside:
        return 0 if lint_this_project() else 1
    packages = [options.project] if options.project else [spec.package for spec in ALL_PROJECTS]
    ok = True
    for package in packages:
        result = lint_project(package)
        print(f"[migration-safety] {package}\n{result.stdout}{result.stderr}", flush=True)
        ok = ok and result.returncode == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
