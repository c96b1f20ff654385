"""The gateway's process-wide pieces, built once from settings: the upstream client, the health
monitor, the rate limiter and the WSGI application that puts them together."""

from __future__ import annotations

import threading
from typing import Any

from django.conf import settings

from bazaar_common.discovery import get_registry, health_confirmed, health_filter, start_health_monitor
from bazaar_common.http import RetryBudget, ServiceClient

_client: ServiceClient | None = None
_lock = threading.Lock()


def upstream_client() -> ServiceClient:
    """The client the gateway proxies with (clients' own tokens are forwarded, not ours)."""
    global _client
    if _client is None:
        with _lock:
            if _client is None:
                _client = ServiceClient(
                    get_registry().instances,
                    healthy=health_filter(),
                    confirmed_healthy=health_confirmed(),
                    balancer=settings.GATEWAY_BALANCER,
                    pool_maxsize=settings.GATEWAY_UPSTREAM_POOL_SIZE,
                    retry_budget=RetryBudget(ratio=settings.GATEWAY_RETRY_BUDGET_RATIO),
                    instance_failure_threshold=settings.GATEWAY_BREAKER_INSTANCE_FAILURES,
                    instance_recovery_timeout=settings.GATEWAY_BREAKER_RECOVERY_SECONDS,
                    service_failure_threshold=settings.GATEWAY_BREAKER_SERVICE_FAILURES,
                    service_recovery_timeout=settings.GATEWAY_BREAKER_RECOVERY_SECONDS,
                    half_open_probes=settings.GATEWAY_BREAKER_HALF_OPEN_PROBES,
                )
    return _client


def build_application(django_app: Any) -> Any:
    from gateway.routing.edge import Cors
    from gateway.routing.proxy import GatewayApplication, GatewayConfig
    from gateway.routing.ratelimit import RateLimiter

    if settings.GATEWAY_HEALTH_CHECKS:
        start_health_monitor()
    limiter = None
    if settings.GATEWAY_RATE_LIMITING:
        limiter = RateLimiter.from_env(
            settings.GATEWAY_RATE_LIMIT_REDIS_URL,
            debug=settings.DEBUG,
            prefix=settings.GATEWAY_RATE_LIMIT_PREFIX,
        )
    return GatewayApplication(
        django_app,
        client=upstream_client(),
        limiter=limiter,
        cors=Cors(settings.GATEWAY_CORS_ALLOWED_ORIGINS),
        config=GatewayConfig(
            max_body_bytes=settings.GATEWAY_MAX_BODY_BYTES,
            trusted_proxies=settings.GATEWAY_TRUSTED_PROXIES,
            hsts_seconds=settings.GATEWAY_HSTS_SECONDS,
            access_log=settings.GATEWAY_ACCESS_LOG,
            login_concurrency=settings.GATEWAY_LOGIN_CONCURRENCY,
            login_queue_seconds=settings.GATEWAY_LOGIN_QUEUE_SECONDS,
            caller_max_failures=settings.GATEWAY_CALLER_MAX_FAILURES,
            caller_failure_window_seconds=settings.GATEWAY_CALLER_FAILURE_WINDOW_SECONDS,
        ),
    )
