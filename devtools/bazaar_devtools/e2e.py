"""Driving the real platform, run as separate processes, from end-to-end tests.

One platform per test session (starting it costs ~20-40 s): the gateway, every service's web
instance and Celery worker, on free ports, with their own databases (PostgreSQL when
``DATABASE_URL`` points at a server, else SQLite files in a temporary folder), an embedded Redis of
the run's own (``redis_down()`` plays its outage) and a separate broker that a test can stop and start, chosen by
``E2E_BROKER``:

* ``redis`` (default): an embedded redis-server of the run's own; ``stop()`` ends the process.
* ``rabbitmq``: a virtual host of the run's own on the machine's RabbitMQ (127.0.0.1:5672), created
  and deleted with ``rabbitmqctl``, reached through a :class:`~bazaar_devtools.faults.FaultProxy`;
  ``stop()`` resets every connection and refuses new ones, as a broker that went down would.

Tests that kill or add instances must leave one healthy instance of every service behind them
(``platform.ensure_one_instance_each()`` does that).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import redis
import requests

from bazaar_common.demo import DEMO_PASSWORD
from bazaar_common.discovery import RedisRegistry
from bazaar_devtools.otlp import OtlpReceiver
from bazaar_devtools.platform import (
    ALL_PROJECTS,
    BY_NAME,
    EmbeddedRedis,
    Platform,
    PlatformConfig,
    Proc,
    RabbitVhost,
    database_base_name,
    free_port,
    with_database_name,
)

BROKERS = ("redis", "rabbitmq")

# Short discovery timings so that tests about instances coming and going run in seconds.
E2E_ENV = {
    # Every e2e test is one client address (127.0.0.1): the load of one (the bench smoke, a
    # stream of GETs) must not spend the anonymous/user budget of the tests after it. The sign-in
    # and checkout classes keep development limits; the 429 tests start gateways of their own.
    "GATEWAY_RATE_LIMITS": "anonymous=1000000/60,user=1000000/60,login=600/60,checkout=600/60",
    "DISCOVERY_TTL_SECONDS": "4",
    "DISCOVERY_HEARTBEAT_SECONDS": "1",
    "DISCOVERY_CACHE_SECONDS": "0.5",
    "LOG_LEVEL": "INFO",
    # Tasks of a killed worker come back after this on Redis (production: 60 s); the timeout
    # covers the task's hard limit plus a retry's longest countdown (30 + 4 = 34), as the Celery
    # app demands (bazaar_common.celery.check_redis_visibility). The limit stays the production
    # 30 s: its soft limit (25 s) must stay above SQLite's 20 s lock wait, or on SQLite a broker
    # outage's lock waits end as interrupted tasks instead of retried "database is locked" errors
    # (tried at 16 s: the orders file then answered "database disk image is malformed").
    "CELERY_VISIBILITY_TIMEOUT_SECONDS": "34",
    "CELERY_RETRY_BACKOFF_MAX_SECONDS": "4",
    "CELERY_UNACKED_RESTORE_SECONDS": "5",
    # A message its consumer has not acknowledged is sent again after 2 s, 4 s, 8 s, then every
    # 10 s, for about 3 minutes before its flow is settled and flagged (production: 30 s doubling
    # to 10 min, 10 attempts).
    "OUTBOX_ACK_TIMEOUT_SECONDS": "2",
    "OUTBOX_ACK_BACKOFF_MAX_SECONDS": "10",
    "OUTBOX_MAX_ATTEMPTS": "20",
    "ORDER_RECONCILE_INTERVAL_SECONDS": "5",
    "ORDER_RECONCILE_MIN_AGE_SECONDS": "10",
    # The catalog asks about overdue holds every second (production: 30 s).
    "INVENTORY_EXPIRY_SWEEP_SECONDS": "1",
}


class EmbeddedRedisBroker(EmbeddedRedis):
    kind = "redis"

    def purge(self) -> None:
        """Lose every queued and unacknowledged message (a restart without persistence)."""
        redis.Redis.from_url(self.url).flushall()

    def close(self) -> None:
        self.stop()


class RabbitBroker:
    """RabbitMQ for one run: its own vhost, behind a fault proxy that plays the outage."""

    kind = "rabbitmq"

    def __init__(self) -> None:
        from bazaar_devtools.faults import FaultProxy

        self.vhost = RabbitVhost(f"bazaar_e2e_{uuid.uuid4().hex[:10]}").create()
        self.proxy = FaultProxy.for_url(self.vhost.url)
        self.url = self.proxy.url_for(self.vhost.url)

    def start(self) -> RabbitBroker:
        self.proxy.heal()
        return self

    def stop(self) -> None:
        self.proxy.refuse()

    def purge(self) -> None:
        """Lose every queued message (what a broker restarted without its data would have)."""
        self.vhost.purge()

    def close(self) -> None:
        self.proxy.close()
        self.vhost.delete()


Broker = EmbeddedRedisBroker | RabbitBroker


def e2e_broker(directory: Any, tag: str | None = None) -> Broker:
    """The broker named by ``E2E_BROKER`` (``redis`` or ``rabbitmq``), started; ``tag`` marks an
    embedded redis-server as the platform's (its watchdog ends it with the platform)."""
    kind = os.environ.get("E2E_BROKER", "redis").strip().lower() or "redis"
    if kind not in BROKERS:
        raise ValueError(f"E2E_BROKER must be one of {', '.join(BROKERS)}, got {kind!r}")
    if kind == "rabbitmq":
        return RabbitBroker()
    broker = EmbeddedRedisBroker(directory=directory, tag=tag)
    broker.start()
    return broker


class E2EPlatform:
    """What a test uses to drive the running platform."""

    def __init__(self, platform: Platform, broker: Broker, *, traces: OtlpReceiver | None = None) -> None:
        self.platform = platform
        self.broker = broker
        # Where the processes export their spans (the e2e session's receiver), if anywhere.
        self.traces = traces
        self.gateway_url = f"http://127.0.0.1:{platform.config.gateway_port}"
        self.redis_url = platform.redis_url
        self.registry = RedisRegistry.from_url(platform.redis_url, cache_seconds=0)
        self.http = requests.Session()

    # --- processes ---------------------------------------------------------------------------
    def instances(self, service: str) -> list[Proc]:
        return [p for p in self.platform.procs if p.service == service and p.kind == "web" and p.alive]

    def workers(self, service: str) -> list[Proc]:
        return [p for p in self.platform.procs if p.service == service and p.kind == "worker" and p.alive]

    def url(self, service: str) -> str:
        return self.instances(service)[0].url

    def start_instance(self, service: str, **env: str) -> Proc:
        """One more web instance of ``service``; returns once it answers /readyz."""
        spec_proc = self.platform.web_proc(next(s for s in ALL_PROJECTS if s.name == service))
        spec_proc.env.update(env)
        self.platform.spawn(spec_proc)
        self.platform.wait_ready(spec_proc)
        return spec_proc

    def stop_instance(self, proc: Proc, sig: int = signal.SIGTERM) -> None:
        self.platform.stop(proc, sig)

    def kill_instance(self, proc: Proc) -> None:
        """SIGKILL the whole process group, as when a machine or container dies."""
        self.platform.stop(proc, signal.SIGKILL)

    def start_worker(self, service: str, *, beat: bool = False, **env: str) -> Proc:
        """One more Celery worker of ``service`` (with beat: the one that runs its periodic
        tasks), with ``env`` on top of the platform's (e.g. a DATABASE_URL through a fault proxy)."""
        spec = BY_NAME[service]
        index = sum(1 for p in self.platform.procs if p.service == service and p.kind == "worker")
        proc = self.platform.worker_proc(spec, index, beat=beat)
        proc.env.update(env)
        return self.platform.spawn(proc)

    def database_url(self, service: str) -> str:
        return self.platform.database_url(BY_NAME[service])

    def ensure_one_instance_each(self) -> None:
        for spec in ALL_PROJECTS:
            if spec.name == "gateway":
                continue
            if not self.instances(spec.name):
                self.start_instance(spec.name)
            if spec.has_worker and not self.workers(spec.name):
                self.platform.start_worker(spec.name, beat=True)

    @contextlib.contextmanager
    def redis_down(self) -> Iterator[None]:
        """Redis (registry, caches, limits, revocation) away for the block, then back *empty*
        on the same port (a restart without persistence)."""
        redis_server = self.platform.embedded_redis
        assert redis_server is not None, "the e2e platform runs a redis-server of its own"
        redis_server.stop()
        try:
            yield
        finally:
            redis_server.start()

    def wait_registered(self, service: str, count: int, timeout: float = 15) -> list[Any]:
        return wait_for(lambda: (found := self.registry.lookup(service)) and len(found) == count and found,
                        timeout, f"{count} registered {service} instance(s)")  # fmt: skip

    # --- HTTP through the gateway ------------------------------------------------------------
    def api(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> requests.Response:
        headers = kwargs.pop("headers", {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        kwargs.setdefault("timeout", 30)
        return self.http.request(method, f"{self.gateway_url}{path}", headers=headers, **kwargs)

    def token(self, email: str, password: str = DEMO_PASSWORD) -> str:
        response = self.api("POST", "/api/v1/auth/token", json={"email": email, "password": password})
        assert response.status_code == 200, response.text
        return response.json()["access"]

    def register_customer(self) -> tuple[str, str]:
        """A fresh customer account; returns (email, access token)."""
        email = f"shopper-{uuid.uuid4().hex[:10]}@example.com"
        password = f"Pw-{uuid.uuid4().hex}"
        response = self.api("POST", "/api/v1/auth/register", json={"email": email, "password": password})
        assert response.status_code == 201, response.text
        return email, self.token(email, password)


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def e2e_config(var_dir: Any) -> tuple[PlatformConfig, list[str]]:
    run_id = uuid.uuid4().hex[:6]
    database_url = os.environ.get("DATABASE_URL") or None
    databases: list[str] = []
    if database_url and database_url.startswith("postgres"):
        base = f"{database_base_name(database_url)}_{run_id}"
        database_url = with_database_name(database_url, base)
        databases = [with_database_name(database_url, f"{base}_{spec.name}") for spec in ALL_PROJECTS]
    else:
        database_url = None
    config = PlatformConfig(
        var_dir=var_dir,
        gateway_port=free_port(),
        port_base=20000 + (int(run_id, 16) % 400) * 100,
        database_url=database_url,
        # A redis-server of the run's own (as the broker): a test can take it down and bring it
        # back empty (``E2EPlatform.redis_down``) without touching anyone else's Redis.
        redis_url=None,
        extra_env=dict(E2E_ENV),
        worker_concurrency=2,
        # As deployed (the chart): prefork children, which enforce the hard task time limit the
        # Redis visibility timeout relies on. `make up` runs threads; tests that need it ask.
        worker_pool="prefork",
    )
    return config, databases
