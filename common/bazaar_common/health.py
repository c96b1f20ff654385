"""Liveness (``/healthz``) and readiness (``/readyz``).

Readiness answers one question: can this pod serve its traffic? A pod that says no leaves the
Service's endpoints, so a dependency every pod shares (Redis, a database) must not fail readiness
unless the traffic truly cannot be served without it — otherwise one Redis outage empties every
Service at once and turns a degraded platform into a dead one. So each service names the checks its
traffic *requires* (``READINESS_REQUIRED``, default: its database); every other check is
*degrading*: reported in the body (``"status": "degraded"``) and in the gauge
``bazaar_dependency_up{dependency}`` (0 = unreachable), which the alert rules watch, but the pod
stays ready. The gateway requires nothing: its proxy path touches neither its admin-only database
nor Redis (the rate limiter fails open).
"""

from __future__ import annotations

import logging

import redis
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.urls import path
from prometheus_client import Gauge
from redis.backoff import NoBackoff
from redis.retry import Retry

from bazaar_common.errors import problem_response

DEPENDENCY_UP = Gauge(
    "bazaar_dependency_up",
    "1 when this process reached the dependency at its last readiness check, else 0",
    ["dependency"],
)

logger = logging.getLogger(__name__)
_redis_clients: dict[str, redis.Redis] = {}


def _redis() -> redis.Redis:
    url = settings.REDIS_URL
    client = _redis_clients.get(url)
    if client is None:
        # No retries: readiness must answer quickly that Redis is away, not after redis-py's
        # default back-off (several seconds).
        client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1, retry=Retry(NoBackoff(), 0))
        _redis_clients[url] = client
    return client


def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok", "service": settings.BAZAAR_SERVICE})


def check_database() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:
        return f"database: {exc.__class__.__name__}"
    return None


def check_redis() -> str | None:
    try:
        _redis().ping()
    except Exception as exc:
        return f"redis: {exc.__class__.__name__}"
    return None


CHECKS = {"database": check_database, "redis": check_redis}


def readyz(request: HttpRequest) -> JsonResponse:
    required = set(getattr(settings, "READINESS_REQUIRED", ("database",)))
    failed_required: list[str] = []
    degraded: list[str] = []
    for name, check in CHECKS.items():
        failure = check()
        DEPENDENCY_UP.labels(dependency=name).set(0 if failure else 1)
        if failure:
            (failed_required if name in required else degraded).append(failure)
    if failed_required:
        logger.warning("not ready", extra={"failures": failed_required, "degraded": degraded})
        return problem_response(503, "Not ready.", retry_after=5, checks=failed_required + degraded)
    body: dict[str, object] = {"status": "ready", "service": settings.BAZAAR_SERVICE}
    if degraded:
        logger.warning("ready but degraded", extra={"degraded": degraded})
        body |= {"status": "degraded", "degraded": degraded}
    return JsonResponse(body)


urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
]
