"""The previous release of the catalog keeps working on the schema the new release migrated to.

A rolling deploy runs the new release's migrations first (the chart's pre-upgrade hook), while the
previous release's pods still serve. This test does exactly that with real processes: the new
code migrates a fresh database and seeds it; then the previous release's code — extracted with
``git archive`` from the previous release (the newest ``v*`` tag before HEAD, else HEAD~1;
``BAZAAR_PREVIOUS_RELEASE`` overrides) — writes through its ORM and serves its public API on that
schema. Invariant: the old code's insert succeeds and its API lists every product in the database
(the seeded ones and its own), each readable by id — no column it reads or writes is missing.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from io import BytesIO
from pathlib import Path

import pytest
import urllib3

from bazaar_devtools.platform import (
    ROOT,
    database_base_name,
    drop_postgres_database,
    ensure_postgres_database,
    free_port,
    with_database_name,
)

CLONE_A_PRODUCT = """
from catalog_service.products.models import Product
product = Product.objects.order_by("id").first()
product.pk = None
product.sku = product.sku + "-OLD"
product.slug = product.slug + "-old"
product.save()
print(Product.objects.count())
"""


def previous_release() -> str:
    if os.environ.get("BAZAAR_PREVIOUS_RELEASE"):
        return os.environ["BAZAAR_PREVIOUS_RELEASE"]
    tag = subprocess.run(
        ["git", "describe", "--tags", "--abbrev=0", "--match", "v*", "HEAD^"], cwd=ROOT, capture_output=True, text=True
    )
    return tag.stdout.strip() if tag.returncode == 0 else "HEAD~1"


def extract(revision: str, target: Path) -> None:
    archive = subprocess.run(
        ["git", "archive", "--format=tar", revision, "common", "catalog_service"], cwd=ROOT, capture_output=True
    )
    assert archive.returncode == 0, f"cannot read {revision} (a shallow clone?): {archive.stderr.decode()}"
    with tarfile.open(fileobj=BytesIO(archive.stdout)) as tar:
        tar.extractall(target, filter="data")


@pytest.fixture
def database_env(tmp_path: Path):
    env = dict(os.environ) | {
        "DEBUG": "1",
        "BAZAAR_VAR_DIR": str(tmp_path / "var"),
        "OUTBOX_RELAY": "0",
        "DJANGO_SETTINGS_MODULE": "catalog_service.config.settings",
    }
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith("postgres"):
        url = with_database_name(url, f"{database_base_name(url)}_previous_release")
        drop_postgres_database(url)
        ensure_postgres_database(url)
        env["DATABASE_URL"] = url
    else:
        env.pop("DATABASE_URL", None)  # one SQLite file under BAZAAR_VAR_DIR, shared by both releases
    yield env
    if url.startswith("postgres"):
        drop_postgres_database(url)


def run(command: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, f"{' '.join(command)} in {cwd}:\n{result.stdout}\n{result.stderr}"
    return result


def test_previous_catalog_release_writes_and_serves_on_the_new_schema(tmp_path: Path, database_env) -> None:
    old = tmp_path / "previous"
    extract(previous_release(), old)
    # The previous release's packages first on the path: they shadow the editable installs.
    old_env = database_env | {"PYTHONPATH": f"{old / 'common'}{os.pathsep}{old / 'catalog_service'}"}

    run([sys.executable, "manage.py", "migrate", "--noinput"], ROOT / "catalog_service", database_env)
    run([sys.executable, "manage.py", "seed_demo"], ROOT / "catalog_service", database_env)

    count = int(
        run([sys.executable, "manage.py", "shell", "-c", CLONE_A_PRODUCT], old / "catalog_service", old_env)
        .stdout.strip()
        .splitlines()[-1]
    )

    port = free_port()
    web = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bazaar_common.serve",
            "catalog_service",
            "--service",
            "catalog",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--threads",
            "2",
        ],
        cwd=old / "catalog_service",
        env=old_env | {"DISCOVERY_BACKEND": "static", "DISCOVERY_STATIC": ""},
        start_new_session=True,
    )
    http = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=1, read=10))
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if http.request("GET", f"{base}/readyz").status == 200:
                    break
            except urllib3.exceptions.HTTPError:
                pass
            assert web.poll() is None, "the previous release exited"
            assert time.monotonic() < deadline, "the previous release never got ready"
            time.sleep(0.3)
        seen: list[dict] = []
        url = f"{base}/api/v1/catalog/products?page_size=100"
        while url:
            page = http.request("GET", url)
            assert page.status == 200, page.data
            body = json.loads(page.data)
            seen += body["results"]
            url = body.get("next")
        assert len(seen) == count
        assert any(product["sku"].endswith("-OLD") for product in seen)
        for product in seen[:3] + seen[-1:]:
            detail = http.request("GET", f"{base}/api/v1/catalog/products/{product['id']}")
            assert detail.status == 200, detail.data
            assert json.loads(detail.data)["id"] == product["id"]
    finally:
        os.killpg(web.pid, signal.SIGKILL)
        web.wait(10)
