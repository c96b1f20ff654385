"""The public keys that verify Bazaar access tokens, as a JWKS, cached and refreshed on rotation.

Sources, first that is configured wins:
1. ``JWT_JWKS_FILE``: a JWKS JSON file (e.g. a mounted config map in production);
2. the ``BAZAAR_LOCAL_JWKS`` setting: a dotted path to a function returning the JWKS in-process
   (the auth service itself, which holds the keys);
3. ``JWT_JWKS_URL``: an explicit URL;
4. development: ``var/keys/jwks.json``, written by the auth service on first run and on rotation;
5. the auth service found through discovery, at ``/api/v1/auth/.well-known/jwks.json``.

A token with an unknown ``kid`` triggers one reload, at most every ``JWT_JWKS_MIN_REFRESH_SECONDS``
(default 3; no limit for the in-process source of the auth service itself), so a rotated key is
picked up without a restart and a flood of bogus kids cannot hammer the source.
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
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

logger = logging.getLogger(__name__)
JWKS_PATH = "/api/v1/auth/.well-known/jwks.json"


def _local_jwks_document() -> dict[str, Any] | None:
    """The auth service publishes its own keys in-process (``BAZAAR_LOCAL_JWKS`` setting)."""
    try:
        from django.conf import settings

        loader_path = getattr(settings, "BAZAAR_LOCAL_JWKS", None)
    except Exception:  # Django not configured (a plain script): no local source
        return None
    if not loader_path:
        return None
    from django.utils.module_loading import import_string

    return import_string(loader_path)()


def _local_source_configured() -> bool:
    """True in the auth service itself, whose keys are in-process: re-reading them costs nothing."""
    if os.environ.get("JWT_JWKS_FILE"):
        return False
    try:
        from django.conf import settings

        return bool(getattr(settings, "BAZAAR_LOCAL_JWKS", None))
    except Exception:
        return False


def _load_jwks_document() -> dict[str, Any]:
    from bazaar_common.settings import repo_var_dir

    file_path = os.environ.get("JWT_JWKS_FILE")
    if file_path:
        return json.loads(Path(file_path).read_text())
    local = _local_jwks_document()
    if local is not None:
        return local
    url = os.environ.get("JWT_JWKS_URL")
    if url:
        import urllib3

        response = urllib3.request("GET", url, timeout=urllib3.Timeout(connect=1, read=3), redirect=False)
        if response.status != 200:
            raise jwt.PyJWKClientError(f"JWKS at {url} answered {response.status}")
        return json.loads(response.data)
    # Development: the auth service writes its public keys here on first run and on rotation.
    candidate = repo_var_dir() / "keys" / "jwks.json"
    if candidate.exists():
        return json.loads(candidate.read_text())
    from bazaar_common.discovery import get_registry
    from bazaar_common.http import ServiceClient

    client = ServiceClient(get_registry().instances, read_timeout=3)
    answer = client.request("auth", "GET", JWKS_PATH)
    if answer.status != 200:
        raise jwt.PyJWKClientError(f"auth JWKS answered {answer.status}")
    return answer.json()


MIN_RSA_KEY_BITS = 2048


def public_keys_from_jwks(document: dict[str, Any]) -> dict[str, Any]:
    """kid → RSA public key for the usable signing keys of a JWKS; anything else is ignored."""
    keys: dict[str, Any] = {}
    for jwk in document.get("keys", []) if isinstance(document, dict) else []:
        if not isinstance(jwk, dict) or jwk.get("kty") != "RSA" or not isinstance(jwk.get("kid"), str):
            continue
        if jwk.get("alg") not in (None, "RS256") or jwk.get("use") not in (None, "sig"):
            continue
        if "d" in jwk:
            continue  # a private key has no business in a published JWKS
        try:
            key = RSAAlgorithm.from_jwk(json.dumps(jwk))
        except (jwt.InvalidKeyError, ValueError, TypeError):
            logger.warning("skipping an unreadable JWK", extra={"kid": jwk.get("kid")})
            continue
        if not isinstance(key, rsa.RSAPublicKey) or key.key_size < MIN_RSA_KEY_BITS:
            continue
        keys[jwk["kid"]] = key
    return keys


class KeySet:
    """kid → public key, for RS256 keys only (the algorithm is pinned).

    Keys are kept for ``max_age_seconds`` and then reloaded, so a key withdrawn from the JWKS stops
    being trusted without a restart; an unknown kid triggers an early reload, at most once every
    ``min_refresh_seconds``. When the source is down the keys already known stay in use.
    """

    def __init__(
        self,
        loader: Any = _load_jwks_document,
        min_refresh_seconds: float | None = None,
        max_age_seconds: float | None = None,
        source_is_local: Any = lambda: False,
    ) -> None:
        self._loader = loader
        self._source_is_local = source_is_local
        self._keys: dict[str, Any] = {}
        self._loaded_at = 0.0
        self._lock = threading.Lock()
        self.min_refresh_seconds = (
            min_refresh_seconds
            if min_refresh_seconds is not None
            else float(os.environ.get("JWT_JWKS_MIN_REFRESH_SECONDS", "3"))
        )
        self.max_age_seconds = (
            max_age_seconds if max_age_seconds is not None else float(os.environ.get("JWT_JWKS_MAX_AGE_SECONDS", "300"))
        )

    def _reload(self) -> None:
        self._keys = public_keys_from_jwks(self._loader())
        self._loaded_at = time.monotonic()

    def _try_reload(self) -> None:
        try:
            self._reload()
        except Exception as exc:
            self._loaded_at = time.monotonic()  # don't retry on every request while it's down
            logger.warning("could not load JWKS", extra={"error": str(exc)})

    def _age(self) -> float:
        return time.monotonic() - self._loaded_at

    def get(self, kid: str) -> Any | None:
        if self._loaded_at and self._age() < self.max_age_seconds:
            key = self._keys.get(kid)
            if key is not None:
                return key
        with self._lock:
            stale = not self._loaded_at or self._age() >= self.max_age_seconds
            if stale:
                self._try_reload()
            key = self._keys.get(kid)
            if key is not None or stale:
                return key
            if self._age() < self.min_refresh_seconds and not self._source_is_local():
                return None
            self._try_reload()
            return self._keys.get(kid)

    def reset(self) -> None:
        with self._lock:
            self._keys = {}
            self._loaded_at = 0.0


default_keyset = KeySet(source_is_local=_local_source_configured)
