"""The public OpenAPI document: built, validated and compared with its committed snapshot.

``python -m bazaar_devtools.openapi`` (a step of ``make test``) builds every service's document
as it serves it (drf-spectacular, with the service's own settings, in a process of its own),
merges them as the gateway does (:func:`gateway.routing.selectors.merge_openapi`), validates the
result with openapi-spec-validator and compares it with ``docs/openapi.json``:

* equal: passes;
* different: prints the changes and fails; ``make openapi`` rewrites the snapshot, so that the
  change to the public API is a diff in review;
* a *breaking* change (an operation, parameter, response or field removed, a type narrowed, a
  new required input, …; see :mod:`bazaar_devtools.openapi_diff`) also fails ``make openapi``
  unless its id is listed, with the reason, in ``docs/openapi-intended-breaks.txt``.

The running gateway serves the same document (the e2e suite checks it against the snapshot).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bazaar_devtools.openapi_diff import Change, compare
from bazaar_devtools.platform import GATEWAY, ROOT, SERVICES

SNAPSHOT = ROOT / "docs" / "openapi.json"
INTENDED_BREAKS = ROOT / "docs" / "openapi-intended-breaks.txt"
BIN = Path(sys.executable).parent

_MERGE = """
import json, sys
import django
django.setup()
from django.conf import settings
from gateway.routing import apis, selectors
documents = json.load(open(sys.argv[1]))
merged = selectors.merge_openapi(documents, apis.gateway_document(), servers=settings.GATEWAY_PUBLIC_URLS)
json.dump(merged, sys.stdout)
"""


def _environment(settings_module: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        # what the snapshot must not depend on: this machine's deployment values
        if key not in ("GATEWAY_PUBLIC_URLS", "REDIS_URL", "DATABASE_URL")
    }
    env.update(DJANGO_SETTINGS_MODULE=settings_module, DEBUG="1", LOG_LEVEL="WARNING")
    return env


def service_documents(work: Path) -> dict[str, dict[str, Any]]:
    """Every service's own document, as its ``/schema/openapi.json`` serves it."""
    running = []
    for spec in SERVICES:
        target = work / f"{spec.name}.json"
        command = [str(BIN / "python"), "-m", "django", "spectacular", "--format", "openapi-json", "--fail-on-warn"]
        process = subprocess.Popen(
            [*command, "--file", str(target)],
            env=_environment(f"{spec.package}.config.settings"),
            cwd=work,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        running.append((spec, target, process))
    documents = {}
    for spec, target, process in running:
        output, _ = process.communicate()
        if process.returncode != 0:
            raise SystemExit(f"openapi: the {spec.name} document could not be built:\n{output}")
        documents[spec.name] = json.loads(target.read_text())
    return documents


def merged_document() -> dict[str, Any]:
    """The public document, exactly as the gateway merges and serves it."""
    with tempfile.TemporaryDirectory(prefix="bazaar-openapi-") as work:
        documents = service_documents(Path(work))
        source = Path(work) / "services.json"
        source.write_text(json.dumps(documents))
        result = subprocess.run(
            [str(BIN / "python"), "-c", _MERGE, str(source)],
            env=_environment(f"{GATEWAY.package}.config.settings"),
            cwd=work,
            capture_output=True,
            text=True,
            check=False,
        )
    if result.returncode != 0:
        raise SystemExit(f"openapi: the gateway could not merge the documents:\n{result.stderr}")
    return json.loads(result.stdout)


def validation_errors(document: dict[str, Any]) -> list[str]:
    from openapi_spec_validator import OpenAPIV30SpecValidator

    return [
        f"{'/'.join(str(part) for part in error.absolute_path) or '(document)'}: {error.message}"
        for error in OpenAPIV30SpecValidator(document).iter_errors()
    ]


def dump(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def intended_breaks() -> set[str]:
    if not INTENDED_BREAKS.exists():
        return set()
    lines = (line.split("#", 1)[0].strip() for line in INTENDED_BREAKS.read_text().splitlines())
    return {line for line in lines if line}


def _print_changes(changes: list[Change], allowed: set[str]) -> list[Change]:
    unintended = []
    for change in changes:
        if change.breaking and change.id not in allowed:
            unintended.append(change)
            mark = "BREAKING"
        elif change.breaking:
            mark = "breaking (intended)"
        else:
            mark = "change"
        print(f"  {mark:20} {change.id}" + (f"  — {change.detail}" if change.detail else ""))
    return unintended


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help="rewrite docs/openapi.json (make openapi)")
    options = parser.parse_args(argv)

    document = merged_document()
    errors = validation_errors(document)
    if errors:
        print(f"openapi: the merged document is invalid ({len(errors)} errors):")
        for error in errors[:50]:
            print(f"  {error}")
        return 1
    operations = sum(1 for item in document["paths"].values() for key in item if not key.startswith("x-"))
    print(f"openapi: the merged document is valid ({len(document['paths'])} paths, {operations} operations)")

    previous = json.loads(SNAPSHOT.read_text()) if SNAPSHOT.exists() else None
    if previous == document:
        print(f"openapi: {SNAPSHOT.relative_to(ROOT)} is up to date")
        return 0
    changes = compare(previous, document) if previous is not None else []
    if changes:
        print(f"openapi: {len(changes)} changes to the public API against {SNAPSHOT.relative_to(ROOT)}:")
    unintended = _print_changes(changes, intended_breaks())
    if unintended:
        print(
            f"openapi: {len(unintended)} breaking changes not marked as intended: list their ids, each with "
            f"the reason, in {INTENDED_BREAKS.relative_to(ROOT)}, or keep the API compatible"
        )
        return 1
    if options.write:
        SNAPSHOT.write_text(dump(document))
        print(f"openapi: wrote {SNAPSHOT.relative_to(ROOT)}; commit it with the change")
        return 0
    print(f"openapi: the public API changed: run `make openapi` and commit {SNAPSHOT.relative_to(ROOT)}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
