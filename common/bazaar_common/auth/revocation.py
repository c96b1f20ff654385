"""Revocation at once: a per-user "not before" time in Redis, checked against the token's issue time.

Access tokens are verified locally (no call to auth per request) and live a few minutes; without
this, a deactivated user, or a session ended by a password change, would keep working until its
token expired. The auth service writes ``bazaar:auth:not-before:<user id>`` = epoch milliseconds
whenever a user's sessions end (deactivation, password change or reset, erasure, an admin's "sign
out everywhere"): right after its transaction commits, and again from its worker through the
outbox (:class:`~bazaar_common.contracts.SessionsRevoked`), so a Redis blip cannot lose it.

Every service (in the shared :class:`~bazaar_common.auth.authentication.JWTAuthentication`) refuses
a user token issued before that time: one Redis ``GET`` per request, nothing cached in the process
(a cache would delay the revocation by its lifetime). The gateway does not look it up again: the
service each request reaches does, so a request costs one lookup wherever it enters, and a revoked
token sent through the gateway gets the service's 401 on its next request. The key lives as long as
an access token can, then expires: older tokens are dead by their own ``exp``.

Redis being away fails open for this check (logged, and Redis is skipped for a second so a dead
Redis costs no latency): the token's short life remains the second line, and refusing every signed-in
request while Redis restarts would turn a cache outage into a full one.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import redis

logger = logging.getLogger(__name__)
KEY_PREFIX = "bazaar:auth:not-before:"
SKIP_AFTER_ERROR_SECONDS = 1.0
# Keeps the later of the stored and the new time (the direct write and the worker's may race).
_SET_MAX = """
local current = tonumber(redis.call('get', KEYS[1]) or '0')
if tonumber(ARGV[1]) > current then
  redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
redis.call('pexpire', KEYS[1], ARGV[2])
return 0
"""
_clients: dict[str, redis.Redis] = {}
_clients_lock = threading.Lock()
_skip_until = 0.0


def _redis_url() -> str:
    from django.conf import settings

    return getattr(settings, "REVOCATION_REDIS_URL", None) or settings.REDIS_URL


def _client() -> redis.Redis:
    url = _redis_url()
    client = _clients.get(url)
    if client is None:
        with _clients_lock:
            client = _clients.get(url) or redis.Redis.from_url(
                url, socket_connect_timeout=0.25, socket_timeout=0.25, retry_on_timeout=False
            )
            _clients[url] = client
    return client


def issued_at_ms(claims: dict[str, Any]) -> int:
    """When the session of this token began, in ms (``iat_ms`` from auth, else ``iat`` seconds)."""
    precise = claims.get("iat_ms")
    if isinstance(precise, int) and not isinstance(precise, bool):
        return precise
    return int(claims.get("iat", 0)) * 1000


def not_before_ms(user_id: str) -> int | None:
    """The user's "not before" time, or None (none set, or Redis unavailable: fail open)."""
    global _skip_until
    if time.monotonic() < _skip_until:
        return None
    try:
        raw = _client().get(KEY_PREFIX + user_id)
    except redis.RedisError as exc:
        _skip_until = time.monotonic() + SKIP_AFTER_ERROR_SECONDS
        logger.warning("revocation check skipped: Redis unavailable", extra={"error": str(exc)[:200]})
        return None
    return int(raw) if raw else None


def is_revoked(user_id: str, claims: dict[str, Any]) -> bool:
    cutoff = not_before_ms(user_id)
    return cutoff is not None and issued_at_ms(claims) < cutoff


def sessions_revoke(*, user_id: str, not_before: int, ttl_seconds: int) -> None:
    """Record that tokens of ``user_id`` issued before ``not_before`` (ms) are no longer valid.

    Raises ``redis.RedisError`` when Redis cannot be reached (the outbox consumer retries).
    """
    _client().eval(_SET_MAX, 1, KEY_PREFIX + user_id, str(int(not_before)), str(int(ttl_seconds * 1000)))


def now_ms() -> int:
    return int(time.time() * 1000)
