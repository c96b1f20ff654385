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
