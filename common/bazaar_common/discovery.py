"""Service discovery: where the instances of a service are, and which of them are fit to serve.

Two backends behind one client API (``instances(service)``, ``lookup``, ``services``, ``register``,
``deregister``), chosen by ``DISCOVERY_BACKEND``:

* ``redis`` (default) — instances register themselves with a TTL renewed by a heartbeat and
  deregister on shutdown. Layout (``{p}`` is ``DISCOVERY_PREFIX``, default ``bazaar:registry``):
  ``{p}:services`` (set of names), ``{p}:{service}`` (set of instance ids),
  ``{p}:{service}:{instance_id}`` (JSON description with a TTL: when the heartbeat stops the key
  expires and the instance is gone; readers drop stale ids from the set).
* ``static`` — a fixed list from ``DISCOVERY_STATIC="catalog=http://catalog:8000,auth=http://auth:8000"``
  (a name may repeat for several instances). Meant for Kubernetes, where a Service already gives
  a stable DNS name and kube-proxy spreads the load; registration is then a no-op.

Readers cache a service's instances for ``DISCOVERY_CACHE_SECONDS`` (default 1 s) so the gateway's
hot path does not ask Redis on every request. When Redis cannot be reached, readers keep the last
instances they knew (and retry Redis at most once a second) so routing goes on.

:class:`HealthMonitor` is the active health check: it polls every instance's ``/readyz`` and takes
an instance that fails it ``fall`` times in a row out of rotation until it passes again. When every
instance of a service fails, all of them stay in rotation ("panic mode"): a shared dependency
being down (Redis) must not turn into the gateway refusing everything.
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
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

logger = logging.getLogger(__name__)

# redis-py retries a refused connection with backoff for ~5 s by default; a registry read on the
# hot path must fail within a second and fall back to the last known instances instead.
FAST_FAILING_REDIS: dict[str, Any] = {
    "socket_connect_timeout": 0.5,
    "socket_timeout": 1.0,
    "retry": Retry(NoBackoff(), 1),
}


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
        data = json.loads(raw)
        known = {key: value for key, value in data.items() if key in cls.__dataclass_fields__}
        return cls(**known)


class Registry(Protocol):
    def register(self, instance: Instance) -> None: ...
    def deregister(self, service: str, instance_id: str) -> None: ...
    def services(self) -> list[str]: ...
    def lookup(self, service: str) -> list[Instance]: ...
    def instances(self, service: str) -> list[Instance]: ...
    def invalidate(self, service: str | None = None) -> None: ...


class RedisRegistry:
    """The registry itself: write side for instances, read side for clients."""

    backend = "redis"

    def __init__(
        self,
        client: redis.Redis,
        *,
        prefix: str = "bazaar:registry",
        ttl_seconds: float = 6.0,
        cache_seconds: float = 1.0,
        retry_seconds: float = 1.0,
    ) -> None:
        self.redis = client
        self.prefix = prefix
        self.ttl_ms = int(ttl_seconds * 1000)
        self.cache_seconds = cache_seconds
        self.retry_seconds = retry_seconds
        self._cache: dict[str, tuple[float, list[Instance]]] = {}
        self._lock = threading.Lock()
        self.last_error: str | None = None
        self.last_error_at = 0.0
        # The registry's generation (see ``register``) and, after it changed, until when readers
        # keep the instances they knew beside the ones that re-registered already.
        self._epoch: str | None = None
        self._repopulating_until = 0.0

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> RedisRegistry:
        client = redis.Redis.from_url(url, **FAST_FAILING_REDIS)
        return cls(client, **kwargs)

    def _service_key(self, service: str) -> str:
        return f"{self.prefix}:{service}"

    def _instance_key(self, service: str, instance_id: str) -> str:
        return f"{self.prefix}:{service}:{instance_id}"

    def register(self, instance: Instance) -> None:
        """Register or renew ``instance`` (a heartbeat is just a re-registration).

        The first registration into an empty Redis also writes the registry's *epoch*, a random
        id without TTL: when Redis comes back empty (restart, failover, flush) the epoch is gone
        or new, and readers know the registry is being repopulated rather than that every
        instance left.
        """
        pipe = self.redis.pipeline(transaction=True)
        pipe.set(f"{self.prefix}:epoch", uuid.uuid4().hex, nx=True)
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
        names: set[bytes] = self.redis.smembers(f"{self.prefix}:services")  # type: ignore[assignment]
        return sorted(name.decode() for name in names)

    def lookup(self, service: str) -> list[Instance]:
        """Live instances of ``service``, straight from Redis (no cache)."""
        return self._lookup(service)[0]

    def _lookup(self, service: str) -> tuple[list[Instance], str | None]:
        pipe = self.redis.pipeline(transaction=False)
        pipe.smembers(self._service_key(service))
        pipe.get(f"{self.prefix}:epoch")
        members, raw_epoch = pipe.execute()
        epoch = raw_epoch.decode() if raw_epoch else None
        ids = sorted(member.decode() for member in members)
        if not ids:
            return [], epoch
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
        return alive, epoch

    def _while_repopulating(self, found: list[Instance], epoch: str | None, known: list[Instance]) -> list[Instance]:
        """After Redis lost the registry, the last known instances stay beside the re-registered
        ones for one TTL: every live instance is back by then (it beats more often than that)."""
        now = time.monotonic()
        if epoch != self._epoch:
            if self._epoch is not None:
                self._repopulating_until = now + self.ttl_ms / 1000
                logger.warning("registry lost its entries; keeping the known instances while they re-register")
            self._epoch = epoch
        if now >= self._repopulating_until or not known:
            return found
        present = {instance.instance_id for instance in found}
        return found + [instance for instance in known if instance.instance_id not in present]

    def instances(self, service: str) -> list[Instance]:
        """Live instances of ``service``, cached for ``cache_seconds``; the last known ones while
        Redis is unreachable."""
        cached = self._cache.get(service)
        now = time.monotonic()
        if cached is not None and now - cached[0] < self.cache_seconds:
            return cached[1]
        with self._lock:
            cached = self._cache.get(service)
            now = time.monotonic()
            if cached is not None and now - cached[0] < self.cache_seconds:
                return cached[1]
            try:
                found, epoch = self._lookup(service)
                found = self._while_repopulating(found, epoch, cached[1] if cached is not None else [])
            except redis.RedisError as exc:
                stale = cached[1] if cached is not None else []
                # Keep routing to what we knew; ask Redis again after retry_seconds, not per request.
                self._cache[service] = (now - self.cache_seconds + self.retry_seconds, stale)
                if self.last_error is None or now - self.last_error_at > 10:
                    logger.warning(
                        "registry unreachable; using the last known instances",
                        extra={"service": service, "instances": len(stale), "error": str(exc)},
                    )
                self.last_error, self.last_error_at = str(exc), now
                return stale
            self.last_error = None
            self._cache[service] = (now, found)
            return found

    def invalidate(self, service: str | None = None) -> None:
        if service is None:
            self._cache.clear()
        else:
            self._cache.pop(service, None)


class StaticRegistry:
    """A fixed set of instances (Kubernetes Services, or any stable DNS names)."""

    backend = "static"

    def __init__(self, instances: list[Instance]) -> None:
        self._by_service: dict[str, list[Instance]] = {}
        for instance in instances:
            self._by_service.setdefault(instance.service, []).append(instance)

    @classmethod
    def from_spec(cls, spec: str) -> StaticRegistry:
        """Parse ``"catalog=http://catalog:8000,catalog=http://catalog-b:8000,auth=http://auth:8000"``."""
        instances = []
        for item in spec.split(","):
            item = item.strip()
            if not item:
                continue
            service, sep, url = item.partition("=")
            url = url.strip().rstrip("/")
            parts = urlsplit(url)
            if not sep or not service.strip() or parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError(f"DISCOVERY_STATIC entry {item!r} is not 'service=http://host:port'")
            instances.append(
                Instance(
                    service=service.strip(),
                    instance_id=f"{service.strip()}@{parts.netloc}",
                    base_url=url,
                    version="static",
                    metadata={"backend": "static"},
                )
            )
        return cls(instances)

    def register(self, instance: Instance) -> None:
        """The platform (Kubernetes) keeps the names; nothing to register."""

    def deregister(self, service: str, instance_id: str) -> None:
        """Nothing to remove: the platform stops routing to a terminating pod."""

    def services(self) -> list[str]:
        return sorted(self._by_service)

    def lookup(self, service: str) -> list[Instance]:
        return list(self._by_service.get(service, []))

    def instances(self, service: str) -> list[Instance]:
        return self._by_service.get(service, [])

    def invalidate(self, service: str | None = None) -> None:
        """Nothing cached."""


# --------------------------------------------------------------------------------------------
# Active health checks
# --------------------------------------------------------------------------------------------
@dataclass
class HealthState:
    healthy: bool = True
    consecutive_failures: int = 0
    last_checked: float = 0.0
    last_status: str = "unchecked"


class HealthMonitor:
    """Polls ``/readyz`` of every known instance; ``filter()`` keeps the fit ones in rotation."""

    def __init__(
        self,
        registry: Registry,
        *,
        interval: float = 2.0,
        fall: int = 2,
        rise: int = 1,
        timeout: float = 1.0,
        path: str = "/readyz",
    ) -> None:
        import urllib3

        self.registry = registry
        self.interval = interval
        self.fall = fall
        self.rise = rise
        self.path = path
        self._timeout = urllib3.Timeout(connect=min(0.5, timeout), read=timeout)
        self._pool = urllib3.PoolManager(num_pools=64, maxsize=2, retries=False)
        self.states: dict[str, HealthState] = {}
        self._successes: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="health")

    def start(self) -> HealthMonitor:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="health-monitor", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.check_all()
            except Exception as exc:  # never let the monitor die
                logger.warning("health check round failed", extra={"error": str(exc)})
            self._stop.wait(self.interval)

    def check_all(self) -> None:
        try:
            services = self.registry.services()
        except redis.RedisError:
            return  # keep the states we have; readers route to the last known instances
        instances = [instance for service in services for instance in self.registry.instances(service)]
        list(self._executor.map(self.check, instances))
        _record_rotation(services, instances, self.is_healthy)
        alive = {instance.instance_id for instance in instances}
        for instance_id in list(self.states):
            if instance_id not in alive:
                self.states.pop(instance_id, None)
                self._successes.pop(instance_id, None)

    def check(self, instance: Instance) -> bool:
        try:
            response = self._pool.request("GET", instance.base_url + self.path, timeout=self._timeout, redirect=False)
            ok, status = response.status == 200, f"{response.status}"
        except Exception as exc:
            ok, status = False, exc.__class__.__name__
        self._record(instance, ok, status)
        return ok

    def _record(self, instance: Instance, ok: bool, status: str) -> None:
        state = self.states.setdefault(instance.instance_id, HealthState())
        state.last_checked = time.time()
        state.last_status = status
        was_healthy = state.healthy
        if ok:
            state.consecutive_failures = 0
            self._successes[instance.instance_id] = self._successes.get(instance.instance_id, 0) + 1
            if not state.healthy and self._successes[instance.instance_id] >= self.rise:
                state.healthy = True
        else:
            self._successes[instance.instance_id] = 0
            state.consecutive_failures += 1
            if state.consecutive_failures >= self.fall:
                state.healthy = False
        if state.healthy != was_healthy:
            (logger.info if state.healthy else logger.warning)(
                "instance back in rotation" if state.healthy else "instance out of rotation",
                extra={
                    "service": instance.service,
                    "instance_id": instance.instance_id,
                    "status": status,
                },
            )

    def is_healthy(self, instance_id: str) -> bool:
        state = self.states.get(instance_id)
        return state is None or state.healthy

    def filter(self, instances: list[Instance]) -> list[Instance]:
        states = self.states
        if not states:
            return instances
        healthy = [
            instance for instance in instances if (state := states.get(instance.instance_id)) is None or state.healthy
        ]
        return healthy or instances  # panic mode: all failing → keep them all

    def confirmed(self, instances: list[Instance]) -> list[Instance]:
        """The instances whose last active checks passed (no panic mode: possibly none)."""
        states = self.states
        return [
            instance
            for instance in instances
            if (state := states.get(instance.instance_id)) is not None and state.healthy and state.last_checked
        ]


def _record_rotation(services: list[str], instances: list[Instance], is_healthy: Callable[[str], bool]) -> None:
    """``bazaar_instances_registered{upstream}`` and ``bazaar_instances_in_rotation{upstream}``.

    prometheus_client is imported here, not at the top: the server's main process imports this
    module before it sets up the multiprocess samples folder.
    """
    from prometheus_client import Gauge

    global _rotation_gauges
    if _rotation_gauges is None:
        _rotation_gauges = (
            Gauge("bazaar_instances_registered", "Instances registered in discovery.", ["upstream"],
                  multiprocess_mode="livemax"),
            Gauge("bazaar_instances_in_rotation", "Registered instances that pass the health check.", ["upstream"],
                  multiprocess_mode="livemax"),
        )  # fmt: skip
    registered, in_rotation = _rotation_gauges
    _known_services.update(services)  # a service whose last instance left reads 0, not its last count
    for service in _known_services:
        mine = [instance for instance in instances if instance.service == service]
        registered.labels(service).set(len(mine))
        in_rotation.labels(service).set(sum(1 for instance in mine if is_healthy(instance.instance_id)))


_rotation_gauges: Any = None
_known_services: set[str] = set()
_monitor: HealthMonitor | None = None


def start_health_monitor(registry: Registry | None = None) -> HealthMonitor:
    """Start this process's active health checker (the gateway does; services need not)."""
    global _monitor
    if _monitor is None:
        _monitor = HealthMonitor(
            registry or get_registry(),
            interval=float(os.environ.get("DISCOVERY_HEALTH_INTERVAL_SECONDS", "2")),
            fall=int(os.environ.get("DISCOVERY_HEALTH_FALL", "2")),
            rise=int(os.environ.get("DISCOVERY_HEALTH_RISE", "1")),
        ).start()
    return _monitor


def health_filter() -> Callable[[list[Instance]], list[Instance]]:
    """A filter for ``ServiceClient(healthy=…)``: uses the monitor if this process runs one."""

    def keep_fit(instances: list[Instance]) -> list[Instance]:
        return _monitor.filter(instances) if _monitor is not None else instances

    return keep_fit


def health_confirmed() -> Callable[[list[Instance]], list[Instance]]:
    """For ``ServiceClient(confirmed_healthy=…)``: the instances the monitor saw pass, if any."""

    def confirmed(instances: list[Instance]) -> list[Instance]:
        return _monitor.confirmed(instances) if _monitor is not None else []

    return confirmed


# --------------------------------------------------------------------------------------------
# Registration and heartbeat
# --------------------------------------------------------------------------------------------
class Heartbeat:
    """Keeps one instance registered until stopped; deregisters on a clean stop.

    With an ``alive`` probe the entry is renewed only while the probe passes, so an instance that
    is up but not answering drops out within the TTL. Until the first registration, and after a
    failed one, it tries every 0.2 s (the server is starting, or Redis is away), else every
    ``interval``.
    """

    def __init__(
        self,
        registry: Registry,
        instance: Instance,
        interval: float,
        alive: Callable[[], bool] | None = None,
    ) -> None:
        self.registry = registry
        self.instance = instance
        self.interval = interval
        self.alive = alive
        self.registered = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{instance.service}", daemon=True)

    def start(self) -> Heartbeat:
        self._beat()
        self._thread.start()
        atexit.register(self.stop)
        return self

    def _beat(self) -> None:
        if self.alive is not None and not self.alive():
            return  # not (yet, or any more) serving: let the entry expire
        instance = Instance(**{**asdict(self.instance), "heartbeat_at": time.time()})
        try:
            self.registry.register(instance)
            self.registered = True
        except redis.RedisError as exc:
            # Redis being away must not take the service down; the instance simply is not
            # discoverable until the next successful beat, tried every 0.2 s from now on so that
            # it is back the moment Redis answers.
            if self.registered:
                logger.warning("heartbeat failed", extra={"error": str(exc)})
            self.registered = False

    def _run(self) -> None:
        while not self._stop.wait(self.interval if self.registered else 0.2):
            self._beat()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def stop(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        try:
            self.registry.deregister(self.instance.service, self.instance.instance_id)
            logger.info("deregistered", extra={"instance_id": self.instance.instance_id})
        except redis.RedisError as exc:
            logger.warning("deregistration failed; the TTL will expire it", extra={"error": str(exc)})

    def drain(self, grace_seconds: float) -> None:
        """Deregister now, then keep serving ``grace_seconds`` while readers' caches expire."""
        if self._stop.is_set():
            return
        self.stop()
        if grace_seconds > 0:
            time.sleep(grace_seconds)


_registry: Registry | None = None
_registry_lock = threading.Lock()


def build_registry() -> Registry:
    """The registry named by ``DISCOVERY_BACKEND`` (``redis`` or ``static``)."""
    backend = os.environ.get("DISCOVERY_BACKEND", "redis").strip().lower()
    if backend == "static":
        return StaticRegistry.from_spec(os.environ.get("DISCOVERY_STATIC", ""))
    if backend != "redis":
        raise ValueError(f"DISCOVERY_BACKEND must be 'redis' or 'static', got {backend!r}")
    from django.conf import settings

    return RedisRegistry.from_url(
        os.environ.get("DISCOVERY_REDIS_URL") or settings.REDIS_URL,
        prefix=os.environ.get("DISCOVERY_PREFIX", "bazaar:registry"),
        ttl_seconds=settings.DISCOVERY_TTL_SECONDS,
        cache_seconds=float(os.environ.get("DISCOVERY_CACHE_SECONDS", "1.0")),
    )


def get_registry() -> Registry:
    """The process-wide registry client, configured from the environment."""
    global _registry
    if _registry is None:
        with _registry_lock:
            if _registry is None:
                _registry = build_registry()
    return _registry


def reset_registry() -> None:
    """Forget the process-wide registry (tests that change the environment)."""
    global _registry
    _registry = None


def instance_from_env(service: str) -> Instance | None:
    """Describe this process's instance from ``INSTANCE_URL`` (set by the launcher or the chart).

    ``SERVICE_VERSION`` gives the version; ``INSTANCE_METADATA="zone=a,canary=1"`` free-form metadata.
    """
    base_url = os.environ.get("INSTANCE_URL")
    if not base_url:
        return None
    now = time.time()
    metadata: dict[str, Any] = {"pid": os.getpid(), "host": socket.gethostname()}
    for item in os.environ.get("INSTANCE_METADATA", "").split(","):
        key, sep, value = item.partition("=")
        if sep and key.strip():
            metadata[key.strip()] = value.strip()
    return Instance(
        service=service,
        instance_id=os.environ.get("INSTANCE_ID") or f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}",
        base_url=base_url.rstrip("/"),
        version=os.environ.get("SERVICE_VERSION", "dev"),
        metadata=metadata,
        registered_at=now,
        heartbeat_at=now,
    )


def drain_grace_seconds() -> float:
    return float(os.environ.get("DISCOVERY_DRAIN_SECONDS", "1.5"))
