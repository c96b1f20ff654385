"""Faults of one instance or of a dependency cost no request they need not cost (issue 10):
a hung instance costs no idempotent GET, a dependency's outage answered as 503 opens no breaker,
a slow instance among healthy ones never opens the service's breaker."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from bazaar_common.discovery import HealthMonitor
from bazaar_common.errors import DEPENDENCY_FAULT, DEPENDENCY_FAULT_HEADER
from bazaar_common.http import ServiceClient
from gateway.routing.routes import Route

pytestmark = pytest.mark.django_db(databases=[])
CATALOG_READS = (Route("/api/v1/catalog", "catalog", methods=frozenset({"GET"}), read_timeout=1.0),)


def test_a_get_caught_by_a_hung_instance_is_answered_by_another_within_the_deadline(gateway_factory, backend):
    hung, well = backend("catalog", "catalog-hung"), backend("catalog", "catalog-well")
    hung.delay = 5.0  # accepts the connection, never answers in time
    gateway = gateway_factory(routes=CATALOG_READS, balancer="round_robin", instance_failure_threshold=2)

    timings, answers = [], []
    for _ in range(6):
        started = time.monotonic()
        answers.append(gateway.request("GET", "/api/v1/catalog/products"))
        timings.append(time.monotonic() - started)

    assert [response.status for response in answers] == [200] * 6
    assert {response.json()["instance"] for response in answers} == {"catalog-well"}
    # Each attempt on the hung instance took half the 1 s deadline; none took the whole of it.
    assert max(timings) < 1.0
    # Two timeouts took the hung instance out of rotation: later GETs did not wait for it.
    assert gateway.app.client.breaker_states()["catalog-hung"] == "open"
    assert hung.hits == 2
    assert well.hits == 6
    assert gateway.app.client.describe_service("catalog")["state"] == "closed"


def test_a_get_on_a_single_hung_instance_is_a_504_at_the_routes_deadline(gateway_factory, backend):
    backend("catalog", "catalog-hung").delay = 3.0
    gateway = gateway_factory(routes=CATALOG_READS)

    started = time.monotonic()
    response = gateway.request("GET", "/api/v1/catalog/products")
    elapsed = time.monotonic() - started

    assert response.status == 504
    assert response.headers["Retry-After"] == "1"
    assert 0.95 <= elapsed < 1.5  # the whole deadline, not half of it: there was nowhere else to go


def test_a_dependency_outage_answered_as_503_opens_no_breaker(gateway_factory, backend):
    # Given a catalog whose database is away: it answers 503 and says the fault is a dependency's
    catalog = backend("catalog", "catalog-1")
    catalog.fail_status = 503
    catalog.fail_headers = [(DEPENDENCY_FAULT_HEADER, DEPENDENCY_FAULT), ("Retry-After", "2")]
    gateway = gateway_factory(instance_failure_threshold=2, service_failure_threshold=2, service_recovery_timeout=30)

    during = [gateway.request("GET", "/api/v1/catalog/products") for _ in range(6)]
    catalog.fail_status = None
    after = gateway.request("GET", "/api/v1/catalog/products")

    # Then its answers are passed on, and the next request after it recovers is served at once
    assert [response.status for response in during] == [503] * 6
    assert all(response.headers["Retry-After"] == "2" for response in during)
    assert after.status == 200
    assert gateway.app.client.breaker_states() == {"catalog-1": "closed"}
    assert gateway.app.client.describe_service("catalog")["state"] == "closed"


def test_an_unmarked_503_still_counts_against_the_breaker(gateway_factory, backend):
    broken = backend("catalog", "catalog-broken")
    broken.fail_status = 503
    gateway = gateway_factory(instance_failure_threshold=2, instance_recovery_timeout=30)

    statuses = [gateway.request("GET", "/api/v1/catalog/products").status for _ in range(3)]

    assert statuses == [503, 503, 503]
    assert broken.hits == 2  # the third was refused by the open breaker without calling it
    assert gateway.app.client.breaker_states() == {"catalog-broken": "open"}


def test_one_slow_instance_among_healthy_ones_never_opens_the_service_breaker(gateway_factory, registry, backend):
    slow = backend("catalog", "catalog-slow")
    backend("catalog", "catalog-a")
    backend("catalog", "catalog-b")
    slow.delay = 3.0  # its readiness check still passes: only the API is slow
    monitor = HealthMonitor(registry, fall=1, rise=1)
    monitor.check_all()
    client = ServiceClient(
        registry.instances,
        healthy=monitor.filter,
        confirmed_healthy=monitor.confirmed,
        instance_failure_threshold=2,
        instance_recovery_timeout=0.5,
        service_failure_threshold=3,
        service_recovery_timeout=0.5,
    )
    gateway = gateway_factory(routes=CATALOG_READS, client=client)

    def get(_: int) -> int:
        return gateway.request("GET", "/api/v1/catalog/products").status

    with ThreadPoolExecutor(max_workers=6) as pool:
        statuses = list(pool.map(get, range(120)))

    assert statuses.count(200) == 120
    assert client.describe_service("catalog")["state"] == "closed"
