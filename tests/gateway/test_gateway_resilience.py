"""Retries, retry budget, breakers, health checks and scaling, against real backends."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from bazaar_common.discovery import HealthMonitor
from bazaar_common.http import RetryBudget, ServiceClient

pytestmark = pytest.mark.django_db(databases=[])
PROBLEM = "application/problem+json"


def _dead_instance(registry, backend, name):
    dead = backend("catalog", name, register=False)
    registry.register(dead.instance())
    dead.stop()
    return dead


def test_get_caught_by_a_dead_instance_is_retried_on_another(gateway_factory, registry, backend):
    _dead_instance(registry, backend, "catalog-dead")
    live = backend("catalog", "catalog-live")
    gateway = gateway_factory(balancer="round_robin")

    statuses = [gateway.request("GET", "/api/v1/catalog/products").status for _ in range(8)]

    assert statuses == [200] * 8
    assert live.hits == 8


def test_post_is_retried_when_the_connection_was_refused(gateway_factory, registry, backend, token_for):
    _dead_instance(registry, backend, "catalog-dead")
    live = backend("catalog", "catalog-live")
    gateway = gateway_factory(balancer="round_robin")
    headers = {"Authorization": f"Bearer {token_for(roles=('merchant',))}"}

    statuses = [
        gateway.request("POST", "/api/v1/catalog/products", body=b"{}", headers=headers).status for _ in range(4)
    ]

    assert statuses == [200] * 4
    assert live.hits == 4


def test_post_answered_503_is_not_sent_again(gateway_factory, backend, token_for):
    failing = backend("catalog", "catalog-failing")
    failing.fail_status = 503
    healthy = backend("catalog", "catalog-healthy")
    # One caller drives every failure here: the per-caller budget is lifted to see the retry rule alone.
    gateway = gateway_factory(balancer="round_robin", instance_failure_threshold=100, caller_max_failures=1000)
    headers = {"Authorization": f"Bearer {token_for(roles=('merchant',))}"}

    statuses = [
        gateway.request("POST", "/api/v1/catalog/products", body=b"{}", headers=headers).status for _ in range(6)
    ]

    assert failing.hits + healthy.hits == 6  # every POST reached exactly one instance once
    assert statuses.count(503) == failing.hits
    assert statuses.count(200) == healthy.hits


def test_get_answered_503_by_one_instance_is_retried_on_another(gateway_factory, backend):
    failing = backend("catalog", "catalog-failing")
    failing.fail_status = 503
    healthy = backend("catalog", "catalog-healthy")
    gateway = gateway_factory(balancer="round_robin", instance_failure_threshold=100)

    statuses = [gateway.request("GET", "/api/v1/catalog/products").status for _ in range(6)]

    assert statuses == [200] * 6
    assert healthy.hits == 6
    assert failing.hits == 3


def test_retry_budget_limits_retries(gateway_factory, registry, backend):
    _dead_instance(registry, backend, "catalog-dead")
    live = backend("catalog", "catalog-live")
    no_budget = RetryBudget(ratio=0.0, min_per_second=0.0, max_balance=0.0)
    gateway = gateway_factory(balancer="round_robin", retry_budget=no_budget, instance_failure_threshold=100)

    statuses = [gateway.request("GET", "/api/v1/catalog/products").status for _ in range(6)]

    assert statuses.count(503) == 3  # every request that met the dead instance first
    assert statuses.count(200) == 3
    assert live.hits == 3


def test_breaker_opens_after_repeated_failures_and_fails_fast(gateway_factory, backend):
    broken = backend("catalog", "catalog-broken")
    broken.fail_status = 500
    gateway = gateway_factory(instance_failure_threshold=3, instance_recovery_timeout=30)

    first = [gateway.request("GET", "/api/v1/catalog/products") for _ in range(3)]
    started = time.monotonic()
    fast = gateway.request("GET", "/api/v1/catalog/products")

    assert [response.status for response in first] == [500, 500, 500]  # the upstream's own answers
    assert fast.status == 503
    assert time.monotonic() - started < 0.5
    assert fast.headers["Content-Type"] == PROBLEM
    assert 25 <= int(fast.headers["Retry-After"]) <= 30
    assert fast.json()["detail"] == "Every instance of the catalog service is failing (circuit open)."
    assert broken.hits == 3
    assert gateway.app.client.breaker_states() == {"catalog-broken": "open"}


def test_client_errors_never_open_a_breaker(gateway_factory, backend):
    catalog = backend("catalog")
    gateway = gateway_factory(instance_failure_threshold=2, service_failure_threshold=2)

    statuses = [gateway.request("GET", "/api/v1/catalog/status/404").status for _ in range(10)]

    assert statuses == [404] * 10
    assert catalog.hits == 10
    assert gateway.app.client.breaker_states() == {"catalog-1": "closed"}


def test_half_open_lets_one_probe_through_then_closes(gateway_factory, backend):
    flaky = backend("catalog", "catalog-flaky")
    flaky.fail_status = 500
    gateway = gateway_factory(instance_failure_threshold=2, instance_recovery_timeout=0.5)
    for _ in range(2):
        gateway.request("GET", "/api/v1/catalog/products")
    assert gateway.app.client.breaker_states() == {"catalog-flaky": "open"}

    # The instance recovers, slowly; the breaker half-opens.
    flaky.fail_status = None
    flaky.delay = 0.6
    time.sleep(0.7)
    hits_before = flaky.hits
    with ThreadPoolExecutor(max_workers=5) as pool:
        responses = list(pool.map(lambda _: gateway.request("GET", "/api/v1/catalog/products"), range(5)))

    statuses = sorted(response.status for response in responses)
    assert statuses == [200, 503, 503, 503, 503]
    assert flaky.hits - hits_before == 1  # only the probe reached the instance
    assert gateway.app.client.breaker_states() == {"catalog-flaky": "closed"}
    flaky.delay = 0
    assert [gateway.request("GET", "/api/v1/catalog/products").status for _ in range(3)] == [200] * 3


def test_service_breaker_fails_fast_when_the_whole_service_fails(gateway_factory, backend):
    first, second = backend("catalog", "catalog-a"), backend("catalog", "catalog-b")
    first.fail_status = second.fail_status = 502
    gateway = gateway_factory(instance_failure_threshold=100, service_failure_threshold=2, service_recovery_timeout=30)

    early = [gateway.request("GET", "/api/v1/catalog/products").status for _ in range(2)]
    hits = first.hits + second.hits
    late = gateway.request("GET", "/api/v1/catalog/products")

    assert early == [502, 502]
    assert late.status == 503
    assert late.json()["detail"] == "The catalog service is failing; not calling it for a while."
    assert first.hits + second.hits == hits
    assert gateway.app.client.describe_service("catalog")["state"] == "open"


def test_failing_readiness_takes_an_instance_out_of_rotation_and_back(gateway_factory, registry, backend):
    sick = backend("catalog", "catalog-sick")
    backend("catalog", "catalog-well")
    monitor = HealthMonitor(registry, fall=1, rise=1)
    client = ServiceClient(registry.instances, healthy=monitor.filter, balancer="round_robin")
    gateway = gateway_factory(client=client)

    sick.ready = False
    monitor.check_all()
    out = [gateway.request("GET", "/api/v1/catalog/products").json()["instance"] for _ in range(4)]
    sick.ready = True
    monitor.check_all()
    back = {gateway.request("GET", "/api/v1/catalog/products").json()["instance"] for _ in range(4)}

    assert out == ["catalog-well"] * 4
    assert monitor.is_healthy("catalog-sick") is True
    assert back == {"catalog-sick", "catalog-well"}


def test_when_every_instance_fails_readiness_they_all_stay_in_rotation(gateway_factory, registry, backend):
    only = backend("catalog", "catalog-only")
    monitor = HealthMonitor(registry, fall=1)
    gateway = gateway_factory(client=ServiceClient(registry.instances, healthy=monitor.filter))
    only.ready = False
    monitor.check_all()

    response = gateway.request("GET", "/api/v1/catalog/products")

    assert monitor.is_healthy("catalog-only") is False
    assert response.status == 200


def test_a_new_instance_gets_traffic_without_restart(gateway, backend):
    first = backend("catalog", "catalog-1")
    for _ in range(3):
        gateway.request("GET", "/api/v1/catalog/products")
    second = backend("catalog", "catalog-2")

    seen: set[str] = set()
    deadline = time.monotonic() + 5
    while seen != {"catalog-1", "catalog-2"} and time.monotonic() < deadline:
        seen.add(gateway.request("GET", "/api/v1/catalog/products").json()["instance"])
        time.sleep(0.05)

    assert seen == {"catalog-1", "catalog-2"}
    assert first.hits >= 3
    assert second.hits >= 1


def test_routing_goes_on_with_the_last_known_instances_when_redis_is_away(gateway, registry, backend):
    catalog = backend("catalog")
    assert gateway.request("GET", "/api/v1/catalog/products").status == 200

    registry.redis = redis.Redis(host="127.0.0.1", port=1, retry=Retry(NoBackoff(), 0))
    statuses = [gateway.request("GET", "/api/v1/catalog/products").status for _ in range(5)]

    assert statuses == [200] * 5
    assert catalog.hits == 6
    assert registry.last_error is not None


def test_one_caller_whose_requests_crash_a_service_cannot_open_its_breaker_for_everyone(
    gateway_factory, backend, token_for
):
    # Given a catalog instance that crashes (500) on what one merchant keeps sending
    catalog = backend("catalog", "catalog-only")
    catalog.fail_status = 500
    gateway = gateway_factory()
    attacker = {"Authorization": f"Bearer {token_for(roles=('merchant',))}"}

    statuses = [
        gateway.request("POST", "/api/v1/catalog/products", body=b"{}", headers=attacker).status for _ in range(12)
    ]

    # Then that caller gets its own 500s up to its budget, and 429s from the gateway after it
    assert statuses == [500] * 3 + [429] * 9
    assert catalog.hits == 3
    refused = gateway.request("POST", "/api/v1/catalog/products", body=b"{}", headers=attacker)
    assert refused.headers["Content-Type"] == PROBLEM
    assert 1 <= int(refused.headers["Retry-After"]) <= 10
    # And everybody else is served: neither the instance's nor the service's breaker opened
    catalog.fail_status = None
    someone_else = {"Authorization": f"Bearer {token_for(roles=('merchant',))}"}
    assert gateway.request("POST", "/api/v1/catalog/products", body=b"{}", headers=someone_else).status == 200
    assert gateway.request("GET", "/api/v1/catalog/products").status == 200
