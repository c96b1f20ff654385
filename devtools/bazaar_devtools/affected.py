"""Which suites a change needs: the path filter of CI's per-service jobs.

    python -m bazaar_devtools.affected --base origin/main     # JSON list of suite names

A service's own directory (or its tests) selects that service's suite, the contract tests when
there are any, and the end-to-end suite (its callers see the change there). Anything shared —
``common/``, ``devtools/``, requirements, the Makefile, the test runner — selects every suite.
Documentation alone selects none. The chart, Dockerfile and workflows are covered by the ``ship``
checks, which every change runs (they take seconds).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from bazaar_devtools.check import SUITES

OWN_PATHS = {
    "auth": ("auth_service/", "tests/auth_service/"),
    "catalog": ("catalog_service/", "tests/catalog_service/"),
    "orders": ("order_service/", "tests/order_service/"),
    "profiles": ("profile_service/", "tests/profile_service/"),
    "gateway": ("gateway/", "tests/gateway/"),
}
# Changes here touch no service's code or tests.
NEUTRAL = ("docs/", "charts/", "tests/charts/", ".github/", "README.md", "Dockerfile", ".dockerignore")


def suites_for(paths: list[str]) -> list[str]:
    known = [suite.name for suite in SUITES]
    chosen: set[str] = set()
    for path in paths:
        owner = next((name for name, prefixes in OWN_PATHS.items() if path.startswith(prefixes)), None)
        if owner is not None:
            chosen.update({owner, "contracts", "e2e"})
        elif path.startswith("tests/e2e/"):
            chosen.add("e2e")
        elif path.startswith(("tests/contracts/",)):
            chosen.add("contracts")
        elif not (path.startswith(NEUTRAL) or path.endswith(".md")):
            return known  # shared code: everything
    return [name for name in known if name in chosen]


def changed_paths(base: str) -> list[str]:
    diff = subprocess.run(["git", "diff", "--name-only", f"{base}...HEAD"], capture_output=True, text=True, check=True)
    return [line for line in diff.stdout.splitlines() if line]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", required=True, help="the commit or branch the change is compared with")
    print(json.dumps(suites_for(changed_paths(parser.parse_args().base))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
