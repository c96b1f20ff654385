"""Service credentials: each service gets short-lived tokens with role ``service`` from auth.

Configured by ``SERVICE_CLIENT_ID`` and ``SERVICE_CLIENT_SECRET``. The token is cached in the
process and renewed once half its lifetime has passed; when renewing fails (auth, or the Redis
behind auth's limiter, is away) the cached token keeps being used until shortly before it
really expires, and renewal is tried again at most every few seconds. A Redis or auth outage
therefore costs service-to-service calls nothing for minutes.
"""

from __future__ import annotations

import logging
import os
import threading
import time

from bazaar_common.contracts import http as internal
from bazaar_common.errors import ServiceUnavailable

logger = logging.getLogger(__name__)

# Stop using a token this long before it expires (clock skew, the call's own duration).
EXPIRY_MARGIN_SECONDS = 15
RENEW_RETRY_SECONDS = 5
_lock = threading.Lock()
_cached: tuple[str, float, float] | None = None  # token, renew after, expires at
_renew_failed_at = 0.0


def _fetch_service_token() -> tuple[str, float]:
    from bazaar_common.discovery import get_registry
    from bazaar_common.http import ServiceClient

    client_id = os.environ.get("SERVICE_CLIENT_ID")
    client_secret = os.environ.get("SERVICE_CLIENT_SECRET")
    if not client_id or not client_secret:
        raise ServiceUnavailable("This service has no credentials (SERVICE_CLIENT_ID/SECRET).")
    client = ServiceClient(get_registry().instances, read_timeout=3)
    exchange = internal.SERVICE_TOKEN
    response = client.request(
        exchange.service,
        exchange.method,
        exchange.path,
        json=internal.ServiceTokenRequest(client_id=client_id, client_secret=client_secret).to_json(),
    )
    if response.status != 200:
        raise ServiceUnavailable(f"auth refused this service's credentials ({response.status}).")
    token = response.parse(internal.ServiceToken, service=exchange.service)
    return token.access, float(token.expires_in)


def service_authorization_header() -> str:
    cached = _cached
    now = time.time()
    if cached is None or now >= cached[1]:
        with _lock:
            cached = _renew(now)
    return f"Bearer {cached[0]}"


def _renew(now: float) -> tuple[str, float, float]:
    """A fresh token, or the cached one while it is still valid and renewing fails."""
    global _cached, _renew_failed_at
    cached = _cached
    if cached is not None and now < cached[1]:
        return cached  # another thread renewed it meanwhile
    usable = cached if cached is not None and now < cached[2] - EXPIRY_MARGIN_SECONDS else None
    if usable is not None and now - _renew_failed_at < RENEW_RETRY_SECONDS:
        return usable  # renewal failed a moment ago: do not ask auth on every call
    try:
        token, lifetime = _fetch_service_token()
    except ServiceUnavailable as exc:
        if usable is None:
            raise
        _renew_failed_at = now
        logger.warning(
            "service token renewal failed; using the cached token until it expires",
            extra={"error": str(exc.detail), "expires_in": round(usable[2] - now)},
        )
        return usable
    _cached = (token, now + lifetime / 2, now + lifetime)
    return _cached


def forget_service_token() -> None:
    global _cached, _renew_failed_at
    _cached = None
    _renew_failed_at = 0.0
