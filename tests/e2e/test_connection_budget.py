"""Every process stays within its PostgreSQL connection budget (docs/capacity.md), measured in
pg_stat_activity while the platform is under load: each connection is attributed to the process
that holds its client port.

Invariant: no web instance holds more than its request threads (+ the outbox publisher), no Celery
worker more than its pool + relay + metrics scrape + outbox publisher; the gateway opens none at
all on its proxy path and holds none once its /readyz requests are over.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest
import requests

from bazaar_devtools.connections import ConnectionSampler, holders_of
from bazaar_devtools.e2e import E2EPlatform, wait_for
from bazaar_devtools.platform import ALL_PROJECTS

pytestmark = pytest.mark.postgres

CONCURRENCY = 24  # three requests per request thread of a service instance (8 threads)


def _hammer(urls: list[str], seconds: float) -> list[int]:
    """GET the urls round robin from CONCURRENCY threads for ``seconds``; the status codes."""
    deadline = time.monotonic() + seconds

    def loop(offset: int) -> list[int]:
        session = requests.Session()
        codes = []
        index = offset
        while time.monotonic() < deadline:
            codes.append(session.get(urls[index % len(urls)], timeout=10).status_code)
            index += 1
        return codes

    with ThreadPoolExecutor(CONCURRENCY) as pool:
        return [code for codes in pool.map(loop, range(CONCURRENCY)) for code in codes]


def _database(platform: E2EPlatform, service: str) -> str:
    return urlsplit(platform.database_url(service)).path.lstrip("/")


def test_every_process_stays_within_its_connection_budget(platform: E2EPlatform):
    platform.ensure_one_instance_each()
    procs = [proc for proc in platform.platform.procs if proc.alive]
    databases = [_database(platform, spec.name) for spec in ALL_PROJECTS]
    gateway_db = _database(platform, "gateway")
    sampler = ConnectionSampler(platform.database_url("catalog"), databases, holders_of(procs), interval=0.1)

    # Given no gateway connection left from the instances' start (their /readyz probes close
    # theirs; the server backend ends a moment after), then the proxy path under load (cached
    # catalog reads through the gateway)
    wait_for(lambda: sampler.sample().by_database.get(gateway_db, 0) == 0, 10, "the readiness probes' connections")
    sampler.start()
    proxied = _hammer([f"{platform.gateway_url}/api/v1/catalog/products"], seconds=2)
    sampler.stop()
    # Then the gateway's own database saw no connection at all
    assert set(proxied) == {200}
    assert sampler.peak_by_database().get(gateway_db, 0) == 0

    # When every web instance's /readyz (a query on each request thread) is hammered, the
    # gateway's included, beside an order that runs the workers' tasks
    _, token = platform.register_customer()
    product = platform.api("GET", "/api/v1/catalog/products").json()["results"][0]
    sampler.samples.clear()
    sampler.start()
    order = platform.api(
        "POST", "/api/v1/orders", token, json={"items": [{"product_id": product["id"], "quantity": 1}]}
    )
    readiness = _hammer([f"{proc.url}/readyz" for proc in procs if proc.kind == "web"], seconds=3)
    sampler.stop()
    assert order.status_code == 202, order.text
    assert set(readiness) == {200}

    # Then no process held more than its budget
    peaks = sampler.peak_by_holder()
    print("peak connections:", {h.name: f"{peaks[h.name]}/{h.budget}" for h in sampler.holders})
    assert sampler.over_budget() == []
    # and the load did reach the request threads (else the budget would not have been tested)
    for proc in procs:
        if proc.kind == "web" and proc.service != "gateway":
            assert peaks[proc.name] >= 2, f"{proc.name} used {peaks[proc.name]} connection(s) under load"
    # and the gateway holds none once its requests are over
    time.sleep(0.5)
    assert sampler.sample().by_database.get(gateway_db, 0) == 0
