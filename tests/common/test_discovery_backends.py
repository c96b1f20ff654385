"""Discovery: Redis registry (TTL, stale fallback), static backend, backend choice, heartbeat."""

from __future__ import annotations

import time
import uuid

import pytest
import redis
from django.conf import settings
from redis.backoff import NoBackoff
from redis.retry import Retry

from bazaar_common import discovery
from bazaar_common.discovery import Heartbeat, Instance, RedisRegistry, StaticRegistry


@pytest.fixture
def registry() -> RedisRegistry:
    client = redis.Redis.from_url(settings.REDIS_URL)
    return RedisRegistry(client, prefix=f"test:{uuid.uuid4().hex[:8]}", ttl_seconds=0.5, cache_seconds=0)


def _instance(name: str = "catalog-1", **extra) -> Instance:
    return Instance("catalog", name, f"http://10.0.0.1:81{name[-1]}", version="1.2.3", metadata={"zone": "a"}, **extra)


def test_registered_instances_carry_version_and_metadata(registry):
    registry.register(_instance())

    (found,) = registry.lookup("catalog")

    assert found == _instance()
    assert registry.services() == ["catalog"]


def test_an_instance_whose_heartbeat_stops_leaves_within_the_ttl(registry):
    registry.register(_instance())

    time.sleep(0.7)

    assert registry.lookup("catalog") == []
    assert registry.redis.smembers(f"{registry.prefix}:catalog") == set()


def test_heartbeat_renews_and_a_clean_stop_deregisters(registry):
    beat = Heartbeat(registry, _instance(), interval=0.1).start()
    time.sleep(0.8)  # longer than the TTL: only renewals keep it there
    alive = registry.lookup("catalog")
    beat.stop()

    assert [instance.instance_id for instance in alive] == ["catalog-1"]
    assert alive[0].heartbeat_at > alive[0].registered_at
    assert registry.lookup("catalog") == []


def test_readers_keep_the_last_known_instances_while_redis_is_unreachable(registry):
    registry.register(_instance())
    assert [i.instance_id for i in registry.instances("catalog")] == ["catalog-1"]

    registry.redis = redis.Redis(host="127.0.0.1", port=1, retry=Retry(NoBackoff(), 0))
    started = time.monotonic()
    during_outage = registry.instances("catalog")

    assert [i.instance_id for i in during_outage] == ["catalog-1"]
    assert time.monotonic() - started < 0.5
    assert registry.last_error is not None


def test_static_backend_parses_names_and_urls():
    static = StaticRegistry.from_spec(
        "catalog=http://catalog:8000, catalog=http://catalog-b:8000/ ,auth=https://auth.internal"
    )

    assert static.services() == ["auth", "catalog"]
    assert [(i.instance_id, i.base_url) for i in static.instances("catalog")] == [
        ("catalog@catalog:8000", "http://catalog:8000"),
        ("catalog@catalog-b:8000", "http://catalog-b:8000"),
    ]
    assert static.instances("orders") == []
    static.register(_instance())  # the platform owns the names: a no-op
    assert len(static.instances("catalog")) == 2


@pytest.mark.parametrize("spec", ["catalog", "catalog=ftp://x", "=http://x:1", "catalog=http://"])
def test_static_backend_refuses_bad_entries(spec):
    with pytest.raises(ValueError, match="DISCOVERY_STATIC entry"):
        StaticRegistry.from_spec(spec)


def test_backend_is_chosen_by_configuration(monkeypatch):
    monkeypatch.setenv("DISCOVERY_BACKEND", "static")
    monkeypatch.setenv("DISCOVERY_STATIC", "orders=http://orders:8000")
    assert isinstance(discovery.build_registry(), StaticRegistry)

    monkeypatch.setenv("DISCOVERY_BACKEND", "redis")
    assert isinstance(discovery.build_registry(), RedisRegistry)

    monkeypatch.setenv("DISCOVERY_BACKEND", "consul")
    with pytest.raises(ValueError, match="DISCOVERY_BACKEND"):
        discovery.build_registry()


def test_instance_description_from_the_environment(monkeypatch):
    monkeypatch.setenv("INSTANCE_URL", "http://127.0.0.1:8123/")
    monkeypatch.setenv("INSTANCE_ID", "catalog-8123")
    monkeypatch.setenv("SERVICE_VERSION", "2.0.1")
    monkeypatch.setenv("INSTANCE_METADATA", "zone=b,canary=1")

    instance = discovery.instance_from_env("catalog")

    assert (instance.instance_id, instance.base_url, instance.version) == (
        "catalog-8123",
        "http://127.0.0.1:8123",
        "2.0.1",
    )
    assert instance.metadata["zone"] == "b"
    assert instance.metadata["canary"] == "1"


def _wipe(registry: RedisRegistry) -> None:
    """What a Redis restarted without its data looks like to the registry."""
    keys = list(registry.redis.scan_iter(f"{registry.prefix}:*"))
    if keys:
        registry.redis.delete(*keys)


def test_readers_keep_the_known_instances_while_an_emptied_registry_is_repopulated(registry):
    registry.ttl_ms = 1500
    registry.register(_instance("catalog-1"))
    registry.register(_instance("catalog-2"))
    assert [i.instance_id for i in registry.instances("catalog")] == ["catalog-1", "catalog-2"]

    # Redis comes back empty: every entry and the registry's epoch are gone
    _wipe(registry)
    while_empty = [i.instance_id for i in registry.instances("catalog")]
    # one instance re-registers (its next heartbeat), the other has not yet
    registry.register(_instance("catalog-2"))
    while_repopulating = [i.instance_id for i in registry.instances("catalog")]
    # one TTL later Redis is trusted again: catalog-1 did not come back, so it is gone
    time.sleep(1.6)
    registry.register(_instance("catalog-2"))
    afterwards = [i.instance_id for i in registry.instances("catalog")]

    assert while_empty == ["catalog-1", "catalog-2"]
    assert sorted(while_repopulating) == ["catalog-1", "catalog-2"]
    assert afterwards == ["catalog-2"]


def test_instances_that_deregister_are_gone_at_once_without_an_epoch_change(registry):
    registry.register(_instance("catalog-1"))
    assert [i.instance_id for i in registry.instances("catalog")] == ["catalog-1"]

    registry.deregister("catalog", "catalog-1")

    assert registry.instances("catalog") == []


def test_a_heartbeat_that_failed_retries_within_a_fraction_of_a_second(registry):
    live = registry.redis
    registry.redis = redis.Redis(host="127.0.0.1", port=1, retry=Retry(NoBackoff(), 0))
    beat = Heartbeat(registry, _instance(), interval=30).start()  # a long interval on purpose
    try:
        assert beat.registered is False
        registry.redis = live  # Redis answers again
        deadline = time.monotonic() + 2
        while not beat.registered and time.monotonic() < deadline:
            time.sleep(0.05)

        assert beat.registered is True
        assert [i.instance_id for i in registry.lookup("catalog")] == ["catalog-1"]
    finally:
        beat.stop()
