"""Gateway test fixtures: real backends on real sockets, a real registry in Redis, and the gateway
application served over real HTTP (a threaded WSGI server in the test process)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from wsgiref.simple_server import make_server

import pytest
import redis
import urllib3
from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler
from gateway_backends import Backend, _QuietHandler, _ThreadingServer
from opentelemetry.instrumentation.utils import suppress_http_instrumentation

from bazaar_common import discovery
from bazaar_common.discovery import RedisRegistry
from bazaar_common.http import RetryBudget, ServiceClient
from gateway.routing import runtime
from gateway.routing.edge import Cors
from gateway.routing.proxy import GatewayApplication, GatewayConfig
from gateway.routing.ratelimit import RateLimiter, parse_limits
from gateway.routing.routes import ACTIVE_ROUTES, Route

TEST_LIMITS = "anonymous=1000/60,user=1000/60,login=3/60,checkout=2/60"


@pytest.fixture
def redis_client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL)


@pytest.fixture
def registry(redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> RedisRegistry:
    """A registry of its own for each test (own prefix), installed as the process-wide one."""
    reg = RedisRegistry(redis_client, prefix=f"test:{uuid.uuid4().hex[:8]}", cache_seconds=0)
    monkeypatch.setattr(discovery, "_registry", reg)
    return reg


@pytest.fixture
def backend(registry: RedisRegistry) -> Iterator[Callable[..., Backend]]:
    """``backend("catalog", "catalog-1")``: start a real HTTP backend and register it."""
    started: list[Backend] = []

    def start(service: str = "catalog", name: str | None = None, *, register: bool = True) -> Backend:
        instance = Backend(service, name or f"{service}-{len(started) + 1}")
        started.append(instance)
        if register:
            registry.register(instance.instance())
        return instance

    yield start
    for instance in started:
        instance.stop()


class GatewayUnderTest:
    def __init__(self, app: GatewayApplication) -> None:
        self.app = app
        self._server = make_server("127.0.0.1", 0, app, server_class=_ThreadingServer, handler_class=_QuietHandler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        self.http = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=2, read=10))

    def request(self, method: str, path: str, **kwargs: Any) -> urllib3.BaseHTTPResponse:
        # The test is the outside caller: its own request is no span (with urllib3 instrumented,
        # it would be the parent of the gateway's), so the gateway's spans are all there is.
        with suppress_http_instrumentation():
            return self.http.request(method, self.url + path, **kwargs)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def gateway_factory(registry: RedisRegistry, redis_client: redis.Redis) -> Iterator[Callable[..., GatewayUnderTest]]:
    """Build and serve a gateway application; options override the defaults."""
    running: list[GatewayUnderTest] = []
    limiter_prefix = f"test-rl:{uuid.uuid4().hex[:8]}"

    def build(
        *,
        routes: tuple[Route, ...] = ACTIVE_ROUTES,
        limits: str = TEST_LIMITS,
        client: ServiceClient | None = None,
        cors_origins: tuple[str, ...] = ("https://shop.example",),
        max_body_bytes: int = 1024,
        rate_limiting: bool = True,
        limiter_redis: redis.Redis | None = None,
        access_log: bool = False,
        login_concurrency: int = 4,
        login_queue_seconds: float = 0.5,
        caller_max_failures: int = 3,
        allowed_hosts: tuple[str, ...] | None = None,
        **client_options: Any,
    ) -> GatewayUnderTest:
        client = client or ServiceClient(
            registry.instances,
            retry_budget=client_options.pop("retry_budget", RetryBudget()),
            **client_options,
        )
        limiter = (
            RateLimiter(limiter_redis or redis_client, parse_limits(limits), prefix=limiter_prefix)
            if rate_limiting
            else None
        )
        app = GatewayApplication(
            WSGIHandler(),
            client=client,
            limiter=limiter,
            cors=Cors(cors_origins),
            config=GatewayConfig(
                max_body_bytes=max_body_bytes,
                access_log=access_log,
                login_concurrency=login_concurrency,
                login_queue_seconds=login_queue_seconds,
                caller_max_failures=caller_max_failures,
                allowed_hosts=allowed_hosts,
            ),
            route_table=routes,
        )
        gateway = GatewayUnderTest(app)
        running.append(gateway)
        return gateway

    yield build
    for gateway in running:
        gateway.stop()


@pytest.fixture
def gateway(gateway_factory: Callable[..., GatewayUnderTest]) -> GatewayUnderTest:
    return gateway_factory()


@pytest.fixture
def fresh_upstream_client(registry: RedisRegistry, monkeypatch: pytest.MonkeyPatch) -> ServiceClient:
    """The process-wide upstream client the gateway's Django views read, rebuilt for this test."""
    monkeypatch.setattr(runtime, "_client", None)
    return runtime.upstream_client()
