"""Service credentials: each service gets short-lived tokens with role ``service`` from auth.

Configured by ``SERVICE_CLIENT_ID`` and ``SERVICE_CLIENT_SECRET``. The token is cached until a
minute before it expires, so service-to-service calls do not ask auth each time.
"""

from __future__ import annotations

import os
import threading
import time

from bazaar_common.errors import ServiceUnavailable

SERVICE_TOKEN_PATH = "/internal/v1/auth/service-token"
_lock = threading.Lock()
_cached: tuple[str, float] | None = None


def _fetch_service_token() -> tuple[str, float]:
    from bazaar_common.discovery import get_registry
    from bazaar_common.http import ServiceClient

    client_id = os.environ.get("SERVICE_CLIENT_ID")
    client_secret = os.environ.get("SERVICE_CLIENT_SECRET")
    if not client_id or not client_secret:
        raise ServiceUnavailable("This service has no credentials (SERVICE_CLIENT_ID/SECRET).")
    client = ServiceClient(get_registry().instances, read_timeout=3)
    response = client.request(
        "auth",
        "POST",
        SERVICE_TOKEN_PATH,
        json={"client_id": client_id, "client_secret": client_secret},
    )
    if response.status != 200:
        raise ServiceUnavailable(f"auth refused this service's credentials ({response.status}).")
    data = response.json()
    return data["access"], time.time() + float(data.get("expires_in", 300))


def service_authorization_header() -> str:
    global _cached
    now = time.time()
    if _cached is None or _cached[1] - 60 < now:
        with _lock:
            if _cached is None or _cached[1] - 60 < now:
                _cached = _fetch_service_token()
    return f"Bearer {_cached[0]}"


def forget_service_token() -> None:
    global _cached
    _cached = None
