"""The gateway stays in its Service when its admin database and Redis are down.

A real gateway process (bazaar_common.serve, as in production) whose DATABASE_URL and REDIS_URL
point at ports nothing listens on, in front of a real backend. Invariant: /readyz answers 200
("degraded", naming both), so Kubernetes keeps routing to it, and the proxy path still serves.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import urllib3
from gateway_backends import Backend

from bazaar_devtools.platform import ROOT, free_port


def test_proxy_stays_ready_and_serves_without_its_database_and_redis(tmp_path) -> None:
    catalog = Backend("catalog", "catalog-1")
    port = free_port()
    dead = free_port()  # nothing listens here
    env = dict(os.environ) | {
        "DEBUG": "1",
        "BAZAAR_VAR_DIR": str(tmp_path),
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:{dead}/bazaar_gateway_gone",
        "REDIS_URL": f"redis://127.0.0.1:{dead}/0",
        "DISCOVERY_BACKEND": "static",
        "DISCOVERY_STATIC": f"catalog={catalog.url}",
        "GATEWAY_HEALTH_CHECKS": "0",
    }
    gateway = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bazaar_common.serve",
            "gateway",
            "--service",
            "gateway",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--threads",
            "2",
        ],
        cwd=ROOT / "gateway",
        env=env,
        start_new_session=True,
    )
    http = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=1, read=10))
    try:
        deadline = time.monotonic() + 30
        ready = None
        while time.monotonic() < deadline and ready is None:
            try:
                ready = http.request("GET", f"http://127.0.0.1:{port}/readyz")
            except urllib3.exceptions.HTTPError:
                time.sleep(0.2)
        assert ready is not None, "the gateway never answered"

        assert ready.status == 200, ready.data
        body = json.loads(ready.data)
        assert body["status"] == "degraded"
        assert body["degraded"] == ["database: OperationalError", "redis: ConnectionError"]

        proxied = http.request("GET", f"http://127.0.0.1:{port}/api/v1/catalog/products")
        assert proxied.status == 200, proxied.data
        assert catalog.hits == 1
        assert catalog.received[0]["path"] == "/api/v1/catalog/products"
    finally:
        os.killpg(gateway.pid, signal.SIGKILL)
        gateway.wait(10)
        catalog.stop()
