"""The resilient client's pieces on their own: breaker states, retry budget, load balancing."""

from __future__ import annotations

import time

import pytest

from bazaar_common.discovery import Instance
from bazaar_common.errors import ServiceUnavailable
from bazaar_common.http import (
    STATE_CLOSED,
    STATE_HALF_OPEN,
    STATE_OPEN,
    InFlight,
    LeastOutstanding,
    ResilientBreaker,
    RetryBudget,
    RoundRobin,
    ServiceClient,
    UpstreamFailure,
    counts_as_failure,
)


def test_breaker_opens_at_the_threshold_and_half_opens_after_the_recovery_time():
    breaker = ResilientBreaker("i-1", service="catalog", failure_threshold=3, recovery_timeout=0.2)

    for _ in range(2):
        breaker.failure(breaker.acquire())
    assert breaker.state == STATE_CLOSED
    breaker.failure(breaker.acquire())
    assert breaker.state == STATE_OPEN
    assert breaker.acquire() is None

    time.sleep(0.25)
    assert breaker.state == STATE_HALF_OPEN


def test_half_open_admits_only_the_configured_number_of_probes():
    breaker = ResilientBreaker("i-1", failure_threshold=1, recovery_timeout=0.05, half_open_probes=2)
    breaker.failure(breaker.acquire())
    time.sleep(0.1)

    first, second, third = breaker.acquire(), breaker.acquire(), breaker.acquire()

    assert (first, second, third) == (True, True, None)
    breaker.success(first)
    assert breaker.state == STATE_CLOSED
    assert breaker.acquire() is False


def test_a_failed_probe_opens_the_breaker_again():
    breaker = ResilientBreaker("i-1", failure_threshold=2, recovery_timeout=0.05)
    for _ in range(2):
        breaker.failure(breaker.acquire())
    time.sleep(0.1)

    breaker.failure(breaker.acquire(), UpstreamFailure("still down"))

    assert breaker.state == STATE_OPEN
    assert breaker.acquire() is None


def test_breaker_as_the_package_uses_it_counts_only_upstream_failures():
    breaker = ResilientBreaker("i-1", failure_threshold=1, recovery_timeout=30)

    with pytest.raises(KeyError):
        breaker.call(lambda: {}["missing"])
    assert breaker.state == STATE_CLOSED
    with pytest.raises(UpstreamFailure):
        breaker.call(lambda: (_ for _ in ()).throw(UpstreamFailure("boom")))
    assert breaker.state == STATE_OPEN


def test_state_changes_are_counted():
    from prometheus_client import REGISTRY

    def opened() -> float:
        return (
            REGISTRY.get_sample_value(
                "bazaar_circuit_breaker_transitions_total",
                {"upstream": "metrics-test", "kind": "instance", "state": "open"},
            )
            or 0.0
        )

    before = opened()
    breaker = ResilientBreaker("m-1", service="metrics-test", failure_threshold=1)
    breaker.failure(breaker.acquire())

    assert opened() == before + 1


@pytest.mark.parametrize(
    ("status", "failure"),
    [
        (200, False),
        (404, False),
        (429, False),
        (500, True),
        (501, False),
        (502, True),
        (503, True),
        (504, True),
    ],
)
def test_only_server_errors_count_as_failures(status, failure):
    assert counts_as_failure(status) is failure


def test_retry_budget_allows_about_a_fifth_of_the_traffic_in_retries():
    budget = RetryBudget(ratio=0.2, min_per_second=0.0, max_balance=5.0)
    budget._balance = 0.0

    allowed = 0
    for _ in range(100):
        budget.deposit()
        if budget.try_withdraw():
            allowed += 1

    assert allowed == 20


def test_retry_budget_balance_is_capped():
    budget = RetryBudget(ratio=1.0, min_per_second=0.0, max_balance=3.0)
    for _ in range(50):
        budget.deposit()

    assert [budget.try_withdraw() for _ in range(4)] == [True, True, True, False]


def _instances(*names: str) -> list[Instance]:
    return [Instance("catalog", name, f"http://{name}") for name in names]


def test_least_outstanding_prefers_the_least_busy_instance():
    in_flight = InFlight()
    balancer = LeastOutstanding(in_flight)
    instances = _instances("a", "b", "c")
    in_flight.start("a")
    in_flight.start("a")
    in_flight.start("b")

    assert [i.instance_id for i in balancer.order(instances)][0] == "c"
    in_flight.finish("a")
    in_flight.finish("a")
    firsts = {balancer.order(instances)[0].instance_id for _ in range(6)}
    assert firsts == {"a", "c"}  # ties are shared round robin


def test_least_outstanding_prefers_the_clearly_faster_of_idle_instances():
    in_flight = InFlight()
    balancer = LeastOutstanding(in_flight)
    instances = _instances("slow", "fast", "similar")
    for name, elapsed in (("slow", 9.0), ("fast", 0.6), ("similar", 1.1)):
        in_flight.start(name)
        in_flight.finish(name, elapsed)

    firsts = [balancer.order(instances)[0].instance_id for _ in range(6)]

    assert set(firsts) == {"fast", "similar"}  # within one 2 ms step they share the load
    assert balancer.order(instances)[-1].instance_id == "slow"
    assert in_flight.latency_ms["slow"] == 9.0
    in_flight.start("slow")
    in_flight.finish("slow", 4.0)
    assert in_flight.latency_ms["slow"] == 8.0  # 9 + 0.2 × (4 − 9)


def test_an_unused_slow_instance_is_tried_again_after_a_while():
    in_flight = InFlight()
    in_flight.start("slow")
    in_flight.finish("slow", 8.0)
    measured = in_flight.measured_at["slow"]

    assert in_flight.recent_latency_ms("slow", measured) == 8.0
    assert in_flight.recent_latency_ms("slow", measured + 1.0) == 4.0
    assert in_flight.recent_latency_ms("slow", measured + 3.0) == 1.0
    assert in_flight.recent_latency_ms("never-used", measured) == 0.0


def test_round_robin_rotates():
    balancer = RoundRobin(InFlight())
    instances = _instances("a", "b", "c")

    assert [balancer.order(instances)[0].instance_id for _ in range(4)] == ["a", "b", "c", "a"]


def test_no_instance_raises_service_unavailable_with_retry_after():
    client = ServiceClient(lambda service: [])

    with pytest.raises(ServiceUnavailable) as caught:
        client.request("catalog", "GET", "/internal/v1/catalog/products")

    assert caught.value.status_code == 503
    assert caught.value.retry_after == 2
    assert str(caught.value.detail) == "No healthy instance of the catalog service."


def test_pools_of_instances_gone_from_discovery_are_closed(monkeypatch):
    import bazaar_common.http as http_module

    monkeypatch.setattr(http_module, "MAX_HOST_POOLS", 2)
    current = _instances("a", "b")
    client = ServiceClient(lambda service: current)
    for instance in current:
        client._seen_instances[instance.base_url] = instance
        client._new_pool(instance.base_url)

    current = _instances("c")
    client._new_pool("http://c")

    assert sorted(client._host_pools) == ["http://c"]
