"""Service discovery: instances register in Redis with a TTL renewed by a heartbeat.

Layout in Redis (``{p}`` is ``DISCOVERY_PREFIX``, default ``bazaar:registry``):

* ``{p}:services`` — set of service names ever registered;
* ``{p}:{service}`` — set of instance ids of that service;
* ``{p}:{service}:{instance_id}`` — JSON description, with a TTL. When the heartbeat stops (the
  process died) the key expires and the instance is gone; readers drop stale ids from the set.

Readers cache a service's instances for ``DISCOVERY_CACHE_SECONDS`` (default 1 s) so that the
gateway's hot path does not ask Redis on every request.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

import redis

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Instance:
    service: str
    instance_id: str
    base_url: str
    version: str = "dev"
    metadata: dict[str, Any] = field(default_factory=dict)
    registered_at: float = 0.0
    heartbeat_at: float = 0.0

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, raw: bytes | str) -> Instance:
        return cls(**json.loads(raw))


class RedisRegistry:
    """The registry itself: write side for instances, read side for clients."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        prefix: str = "bazaar:registry",
        ttl_seconds: float = 6.0,
        cache_seconds: float = 1.0,
    ) -> None:
        self.redis = client
        self.prefix = prefix
        self.ttl_ms = int(ttl_seconds * 1000)
        self.cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, list[Instance]]] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> RedisRegistry:
        client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=2)
        return cls(client, **kwargs)

    def _service_key(self, service: str) -> str:
        return f"{self.prefix}:{service}"

    def _instance_key(self, service: str, instance_id: str) -> str:
        return f"{self.prefix}:{service}:{instance_id}"

    def register(self, instance: Instance) -> None:
        """Register or renew ``instance`` (a heartbeat is just a re-registration)."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.sadd(f"{self.prefix}:services", instance.service)
        pipe.sadd(self._service_key(instance.service), instance.instance_id)
        pipe.set(
            self._instance_key(instance.service, instance.instance_id),
            instance.to_json(),
            px=self.ttl_ms,
        )
        pipe.execute()

    def deregister(self, service: str, instance_id: str) -> None:
        pipe = self.redis.pipeline(transaction=True)
        pipe.srem(self._service_key(service), instance_id)
        pipe.delete(self._instance_key(service, instance_id))
        pipe.execute()
        self.invalidate(service)

    def services(self) -> list[str]:
        return sorted(name.decode() for name in self.redis.smembers(f"{self.prefix}:services"))

    def lookup(self, service: str) -> list[Instance]:
        """Live instances of ``service``, straight from Redis (no cache)."""
        ids = sorted(member.decode() for member in self.redis.smembers(self._service_key(service)))
        if not ids:
            return []
        raws = self.redis.mget([self._instance_key(service, instance_id) for instance_id in ids])
        alive: list[Instance] = []
        expired: list[str] = []
        for instance_id, raw in zip(ids, raws, strict=True):
            if raw is None:
                expired.append(instance_id)
            else:
                alive.append(Instance.from_json(raw))
        if expired:
            # Their keys expired: the heartbeat stopped. Tidy the set so it does not grow forever.
            self.redis.srem(self._service_key(service), *expired)
        return alive

    def instances(self, service: str) -> list[Instance]:
        """Live instances of ``service``, cached for ``cache_seconds``."""
        now = time.monotonic()
        cached = self._cache.get(service)
        if cached is not None and now - cached[0] < self.cache_seconds:
            return cached[1]
        with self._lock:
            cached = self._cache.get(service)
            if cached is not None and now - cached[0] < self.cache_seconds:
                return cached[1]
            found = self.lookup(service)
            self._cache[service] = (time.monotonic(), found)
            return found

    def invalidate(self, service: str | None = None) -> None:
        if service is None:
            self._cache.clear()
        else:
            self._cache.pop(service, None)


class Heartbeat:
    """Keeps one instance registered until stopped; deregisters on a clean stop."""

    def __init__(self, registry: RedisRegistry, instance: Instance, interval: float) -> None:
        self.registry = registry
        self.instance = instance
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"heartbeat-{instance.service}", daemon=True
        )

    def start(self) -> Heartbeat:
        self._beat()
        self._thread.start()
        atexit.register(self.stop)
        return self

    def _beat(self) -> None:
        now = time.time()
        instance = Instance(**{**asdict(self.instance), "heartbeat_at": now})
        try:
            self.registry.register(instance)
        except redis.RedisError as exc:
            # Redis being away must not take the service down; the instance simply is not
            # discoverable until the next successful beat.
            logger.warning("heartbeat failed", extra={"error": str(exc)})

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._beat()

    def stop(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        try:
            self.registry.deregister(self.instance.service, self.instance.instance_id)
            logger.info("deregistered", extra={"instance_id": self.instance.instance_id})
        except redis.RedisError as exc:
            logger.warning("deregistration failed; the TTL will expire it", extra={"error": str(exc)})


_registry: RedisRegistry | None = None
_registry_lock = threading.Lock()


def get_registry() -> RedisRegistry:
    """The process-wide registry client, configured from the environment."""
    global _registry
    if _registry is None:
        with _registry_lock:
            if _registry is None:
                from django.conf import settings

                _registry = RedisRegistry.from_url(
                    os.environ.get("DISCOVERY_REDIS_URL", settings.REDIS_URL),
                    prefix=os.environ.get("DISCOVERY_PREFIX", "bazaar:registry"),
                    ttl_seconds=settings.DISCOVERY_TTL_SECONDS,
                    cache_seconds=float(os.environ.get("DISCOVERY_CACHE_SECONDS", "1.0")),
                )
    return _registry


def instance_from_env(service: str) -> Instance | None:
    """Describe this process's instance from ``INSTANCE_URL`` (set by the launcher or the chart)."""
    base_url = os.environ.get("INSTANCE_URL")
    if not base_url:
        return None
    now = time.time()
    return Instance(
        service=service,
        instance_id=os.environ.get("INSTANCE_ID") or f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}",
        base_url=base_url.rstrip("/"),
        version=os.environ.get("SERVICE_VERSION", "dev"),
        metadata={"pid": os.getpid()},
        registered_at=now,
        heartbeat_at=now,
    )


_heartbeat: Heartbeat | None = None


def start_heartbeat(service: str) -> Heartbeat | None:
    """Register this process as an instance of ``service`` if ``INSTANCE_URL`` is set."""
    global _heartbeat
    if _heartbeat is not None:
        return _heartbeat
    instance = instance_from_env(service)
    if instance is None:
        return None
    from django.conf import settings

    _heartbeat = Heartbeat(get_registry(), instance, settings.DISCOVERY_HEARTBEAT_SECONDS).start()
    logger.info(
        "registered", extra={"instance_id": instance.instance_id, "base_url": instance.base_url}
    )
    return _heartbeat
