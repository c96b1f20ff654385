"""The public keys that verify Bazaar access tokens, as a JWKS, cached and refreshed on rotation.

Sources, first that is configured wins:
1. ``JWT_JWKS_FILE``: a JWKS JSON file (a mounted secret in production, ``var/keys/jwks.json`` in
   development, written by the auth service);
2. ``JWT_JWKS_URL``: an explicit URL;
3. the auth service found through discovery, at ``/api/v1/auth/.well-known/jwks.json``.

A token with an unknown ``kid`` triggers one reload, at most every ``JWT_JWKS_MIN_REFRESH_SECONDS``,
so a rotated key is picked up without a restart and a flood of bogus kids cannot hammer the source.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

import jwt
from jwt.algorithms import RSAAlgorithm

logger = logging.getLogger(__name__)
JWKS_PATH = "/api/v1/auth/.well-known/jwks.json"


def _load_jwks_document() -> dict[str, Any]:
    from bazaar_common.settings import repo_var_dir

    file_path = os.environ.get("JWT_JWKS_FILE")
    if not file_path and os.environ.get("JWT_JWKS_URL") is None:
        candidate = repo_var_dir() / "keys" / "jwks.json"
        if candidate.exists():
            file_path = str(candidate)
    if file_path:
        return json.loads(Path(file_path).read_text())
    url = os.environ.get("JWT_JWKS_URL")
    if url:
        import urllib3

        response = urllib3.request("GET", url, timeout=urllib3.Timeout(connect=1, read=3))
        if response.status != 200:
            raise jwt.PyJWKClientError(f"JWKS at {url} answered {response.status}")
        return json.loads(response.data)
    from bazaar_common.http import ServiceClient
    from bazaar_common.discovery import get_registry

    client = ServiceClient(get_registry().instances, read_timeout=3)
    response = client.request("auth", "GET", JWKS_PATH)
    if response.status != 200:
        raise jwt.PyJWKClientError(f"auth JWKS answered {response.status}")
    return response.json()


class KeySet:
    """kid → public key, for RS256 keys only (the algorithm is pinned)."""

    def __init__(self, loader: Any = _load_jwks_document, min_refresh_seconds: float | None = None) -> None:
        self._loader = loader
        self._keys: dict[str, Any] = {}
        self._loaded_at = 0.0
        self._lock = threading.Lock()
        self.min_refresh_seconds = (
            min_refresh_seconds
            if min_refresh_seconds is not None
            else float(os.environ.get("JWT_JWKS_MIN_REFRESH_SECONDS", "10"))
        )

    def _reload(self) -> None:
        document = self._loader()
        keys = {}
        for jwk in document.get("keys", []):
            if jwk.get("kty") != "RSA" or not jwk.get("kid"):
                continue
            if jwk.get("alg") not in (None, "RS256") or jwk.get("use") not in (None, "sig"):
                continue
            keys[jwk["kid"]] = RSAAlgorithm.from_jwk(json.dumps(jwk))
        self._keys = keys
        self._loaded_at = time.monotonic()

    def get(self, kid: str) -> Any | None:
        key = self._keys.get(kid)
        if key is not None:
            return key
        with self._lock:
            key = self._keys.get(kid)
            if key is not None:
                return key
            if self._loaded_at and time.monotonic() - self._loaded_at < self.min_refresh_seconds:
                return None
            try:
                self._reload()
            except Exception as exc:
                self._loaded_at = time.monotonic()  # don't retry on every request while it's down
                logger.warning("could not load JWKS", extra={"error": str(exc)})
                return None
            return self._keys.get(kid)

    def reset(self) -> None:
        with self._lock:
            self._keys = {}
            self._loaded_at = 0.0


default_keyset = KeySet()
