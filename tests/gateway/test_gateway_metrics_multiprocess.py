"""One scrape of a pod counts the requests of all its granian workers.

A real gateway process (``bazaar_common.serve --workers 2``, as the chart runs a pod) in front of a
real backend. Each worker process writes its samples to its own file in
``PROMETHEUS_MULTIPROC_DIR``; the server's main process serves ``METRICS_PORT`` and adds them up.
Invariant: after N proxied requests answered, spread over several workers (new connection each,
so the kernel hands them to different workers), the scrape reports exactly N — the sum of the
workers' own counts — not one worker's share.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import urllib3
from gateway_backends import Backend
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.parser import text_string_to_metric_families

from bazaar_devtools.platform import ROOT, free_port

WORKERS = 2  # as many as the machine has cores (granian warns beyond)
COUNTED = "bazaar_gateway_requests_total"


def per_worker_counts(directory: Path) -> dict[int, float]:
    """Each worker's own count of proxied requests, read from its samples file."""
    counts: dict[int, float] = {}
    for path in directory.glob("counter_*.db"):
        pid = int(path.stem.rsplit("_", 1)[1])
        for key, value, _timestamp, _pos in MmapedDict.read_all_values_from_file(str(path)):
            if json.loads(key)[1] == COUNTED:
                counts[pid] = counts.get(pid, 0.0) + value
    return counts


def scraped_count(port: int) -> float:
    text = urllib3.request("GET", f"http://127.0.0.1:{port}/metrics", timeout=5).data.decode()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == COUNTED
    )


def test_one_scrape_sums_the_counters_of_every_granian_worker(tmp_path) -> None:
    catalog = Backend("catalog", "catalog-1")
    port, metrics_port, dead = free_port(), free_port(), free_port()
    samples = tmp_path / "metrics"
    env = dict(os.environ) | {
        "DEBUG": "1",
        "BAZAAR_VAR_DIR": str(tmp_path),
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:{dead}/bazaar_gateway_unused",
        "REDIS_URL": f"redis://127.0.0.1:{dead}/0",
        "DISCOVERY_BACKEND": "static",
        "DISCOVERY_STATIC": f"catalog={catalog.url}",
        "GATEWAY_HEALTH_CHECKS": "0",
        "METRICS_PORT": str(metrics_port),
        "PROMETHEUS_MULTIPROC_DIR": str(samples),
    }
    env.pop("BAZAAR_METRICS_PREPARED", None)
    command = [sys.executable, "-m", "bazaar_common.serve", "gateway", "--service", "gateway",
               "--port", str(port), "--workers", str(WORKERS), "--threads", "2"]  # fmt: skip
    gateway = subprocess.Popen(command, cwd=ROOT / "gateway", env=env, start_new_session=True)

    def proxied() -> int:
        # A pool of one connection that closes after the answer: every request a new connection.
        with urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=2, read=10)) as http:
            response = http.request("GET", f"http://127.0.0.1:{port}/api/v1/catalog/products",
                                    headers={"Connection": "close"})  # fmt: skip
            return response.status

    try:
        # Given a gateway whose workers all run (its other child is multiprocessing's resource tracker).
        deadline = time.monotonic() + 60
        workers: list[psutil.Process] = []
        while time.monotonic() < deadline and len(workers) < WORKERS:
            assert gateway.poll() is None, "the gateway exited"
            workers = [p for p in psutil.Process(gateway.pid).children() if "spawn_main" in " ".join(p.cmdline())]
            time.sleep(0.2)
        assert len(workers) == WORKERS
        while time.monotonic() < deadline:
            try:
                if urllib3.request("GET", f"http://127.0.0.1:{port}/readyz", timeout=2).status == 200:
                    break
            except urllib3.exceptions.HTTPError:
                time.sleep(0.2)

        # When requests arrive on new connections, a few at a time, until several workers served some
        # (the kernel chooses the worker; a worker still starting gets none).
        sent = 0
        with ThreadPoolExecutor(max_workers=6) as pool:
            while len([c for c in per_worker_counts(samples).values() if c]) < WORKERS and sent < 600:
                statuses = list(pool.map(lambda _: proxied(), range(30)))
                assert statuses == [200] * 30
                sent += 30

        # Then the main process's one scrape counts every one of them: the sum of the workers' files.
        counts = per_worker_counts(samples)
        assert set(counts) == {worker.pid for worker in workers}
        assert all(counts.values()), counts
        assert sum(counts.values()) == sent
        assert scraped_count(metrics_port) == sent
        assert catalog.hits == sent
        # And the public port serves none of it.
        assert urllib3.request("GET", f"http://127.0.0.1:{port}/metrics", timeout=5).status == 404
    finally:
        os.killpg(gateway.pid, signal.SIGKILL)
        gateway.wait(10)
        catalog.stop()
