"""Liveness (``/healthz``) and readiness (``/readyz``: database and Redis reachable)."""

from __future__ import annotations

import logging

import redis
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.urls import path
from redis.backoff import NoBackoff
from redis.retry import Retry

from bazaar_common.errors import problem_response

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


def readyz(request: HttpRequest) -> JsonResponse:
    failures = [failure for failure in (check_database(), check_redis()) if failure]
    if failures:
        logger.warning("not ready", extra={"failures": failures})
        return problem_response(503, "Not ready.", retry_after=5, checks=failures)
    return JsonResponse({"status": "ready", "service": settings.BAZAAR_SERVICE})


urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
]
