"""The auth service's signing keys: sign with the newest, publish the current and the previous one.

Where the private keys come from (``settings.JWT_SIGNING_KEYS_SOURCE``):

* ``env``: ``JWT_SIGNING_KEYS``, a JSON object ``{"<kid>": "<PEM private key>", ...}``;
* ``dir``: ``JWT_SIGNING_KEYS_DIR``, one ``<kid>.pem`` file per key (a mounted secret in
  production; ``var/keys/`` in development, generated on first run, with ``jwks.json`` next to the
  keys for the other services to read).

Key ids are ``YYYYmmddTHHMMSSffffffZ-<hex>``, so they sort by creation time: the signing key is the
greatest, unless ``JWT_CURRENT_KID`` pins one (used to publish a new key before signing with it).
The JWKS holds the signing key, the one before it, and any newer (staged) keys. The service can
still verify refresh tokens signed by any key it holds.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from jwt.algorithms import RSAAlgorithm

logger = logging.getLogger(__name__)
KID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
RSA_KEY_BITS = 2048
JWKS_FILE_NAME = "jwks.json"


def new_kid(now: datetime | None = None) -> str:
    moment = (now or datetime.now(tz=UTC)).strftime("%Y%m%dT%H%M%S%fZ")
    return f"{moment}-{secrets.token_hex(4)}"


def generate_private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=RSA_KEY_BITS)


def private_key_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _load_pem(kid: str, pem: bytes) -> rsa.RSAPrivateKey:
    if not KID_PATTERN.fullmatch(kid):
        raise ImproperlyConfigured(f"Signing key id {kid!r} is not a safe kid ([A-Za-z0-9_-], ≤64).")
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, rsa.RSAPrivateKey) or key.key_size < RSA_KEY_BITS:
        raise ImproperlyConfigured(f"Signing key {kid} must be an RSA key of at least {RSA_KEY_BITS} bits.")
    return key


def public_jwk(kid: str, key: rsa.RSAPrivateKey) -> dict[str, Any]:
    jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update({"kid": kid, "alg": "RS256", "use": "sig"})
    return jwk


@dataclass(frozen=True)
class KeyRing:
    """A snapshot of the private keys, oldest first."""

    keys: dict[str, rsa.RSAPrivateKey]
    current_kid: str

    @property
    def current_key(self) -> rsa.RSAPrivateKey:
        return self.keys[self.current_kid]

    def published_kids(self) -> list[str]:
        ordered = sorted(self.keys)
        index = ordered.index(self.current_kid)
        return ordered[max(0, index - 1) :]

    def jwks(self) -> dict[str, Any]:
        return {"keys": [public_jwk(kid, self.keys[kid]) for kid in self.published_kids()]}

    def verifying_key(self, kid: str) -> rsa.RSAPublicKey | None:
        key = self.keys.get(kid)
        return key.public_key() if key is not None else None


def _pick_current(keys: dict[str, rsa.RSAPrivateKey], pinned: str | None) -> str:
    if not keys:
        raise ImproperlyConfigured("No JWT signing key is configured.")
    if pinned:
        if pinned not in keys:
            raise ImproperlyConfigured(f"JWT_CURRENT_KID={pinned} is not among the signing keys.")
        return pinned
    return max(keys)


def ring_from_env(raw: str, pinned: str | None) -> KeyRing:
    try:
        entries = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ImproperlyConfigured("JWT_SIGNING_KEYS must be a JSON object {kid: PEM}.") from exc
    if not isinstance(entries, dict):
        raise ImproperlyConfigured("JWT_SIGNING_KEYS must be a JSON object {kid: PEM}.")
    keys = {kid: _load_pem(kid, pem.encode()) for kid, pem in entries.items()}
    return KeyRing(keys=keys, current_kid=_pick_current(keys, pinned))


class KeyDirectory:
    """Keys as ``<kid>.pem`` files in a directory, re-read when the directory changes."""

    def __init__(self, path: Path, *, pinned: str | None, generate_if_empty: bool) -> None:
        self.path = path
        self.pinned = pinned
        self.generate_if_empty = generate_if_empty
        self._ring: KeyRing | None = None
        self._stamp: tuple[int, int] | None = None
        self._lock = threading.Lock()

    def _dir_stamp(self) -> tuple[int, int]:
        info = self.path.stat()
        return info.st_mtime_ns, info.st_ino

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        """Serialise writers across processes (several auth instances may start together)."""
        self.path.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(self.path / ".lock", "a") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock_file, fcntl.LOCK_UN)

    def _read(self) -> dict[str, rsa.RSAPrivateKey]:
        keys = {}
        for pem_path in sorted(self.path.glob("*.pem")):
            keys[pem_path.stem] = _load_pem(pem_path.stem, pem_path.read_bytes())
        return keys

    def ring(self) -> KeyRing:
        if not self.path.exists():
            if not self.generate_if_empty:
                raise ImproperlyConfigured(f"JWT_SIGNING_KEYS_DIR {self.path} does not exist.")
            self.ensure_keys()
        stamp = self._dir_stamp()
        ring = self._ring
        if ring is not None and stamp == self._stamp:
            return ring
        with self._lock:
            keys = self._read()
            if not keys:
                if not self.generate_if_empty:
                    raise ImproperlyConfigured(f"JWT_SIGNING_KEYS_DIR {self.path} holds no <kid>.pem key.")
                self.ensure_keys()
                stamp = self._dir_stamp()
                keys = self._read()
            self._ring = KeyRing(keys=keys, current_kid=_pick_current(keys, self.pinned))
            self._stamp = stamp
            return self._ring

    def ensure_keys(self) -> None:
        """Development: make the first key (and the public JWKS file) unless one exists."""
        with self._exclusive():
            if not any(self.path.glob("*.pem")):
                self._write_key(new_kid(), generate_private_key())
                logger.info("generated a development signing key", extra={"path": str(self.path)})
            self._write_jwks()

    def add_key(self, *, keep: int) -> str:
        """Rotation: a new signing key; keys beyond the ``keep`` newest are deleted."""
        with self._exclusive():
            existing = [path.stem for path in self.path.glob("*.pem")]
            kid = new_kid()
            if existing and kid <= max(existing):
                raise ImproperlyConfigured(f"A key newer than {kid} exists already; is the clock right?")
            self._write_key(kid, generate_private_key())
            for old in sorted(self.path.glob("*.pem"))[:-keep]:
                old.unlink()
            self._write_jwks()
        return kid

    def _write_key(self, kid: str, key: rsa.RSAPrivateKey) -> None:
        target = self.path / f"{kid}.pem"
        temporary = self.path / f".{kid}.pem.tmp"
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as file:
            file.write(private_key_pem(key))
        temporary.replace(target)

    def _write_jwks(self) -> None:
        keys = self._read()
        ring = KeyRing(keys=keys, current_kid=_pick_current(keys, self.pinned))
        temporary = self.path / f".{JWKS_FILE_NAME}.tmp"
        temporary.write_text(json.dumps(ring.jwks(), indent=2))
        temporary.replace(self.path / JWKS_FILE_NAME)


_source_lock = threading.Lock()
_sources: dict[tuple[Any, ...], Any] = {}


def _source() -> Any:
    """The configured key source, built once per distinct configuration."""
    mode = settings.JWT_SIGNING_KEYS_SOURCE
    pinned = settings.JWT_CURRENT_KID or None
    if mode == "env":
        identity: tuple[Any, ...] = ("env", settings.JWT_SIGNING_KEYS, pinned)
    else:
        identity = ("dir", str(settings.JWT_SIGNING_KEYS_DIR), pinned, settings.DEBUG)
    source = _sources.get(identity)
    if source is None:
        with _source_lock:
            source = _sources.get(identity)
            if source is None:
                if mode == "env":
                    source = ring_from_env(settings.JWT_SIGNING_KEYS, pinned)
                else:
                    source = KeyDirectory(
                        Path(settings.JWT_SIGNING_KEYS_DIR), pinned=pinned, generate_if_empty=settings.DEBUG
                    )
                _sources[identity] = source
    return source


def key_ring() -> KeyRing:
    source = _source()
    return source if isinstance(source, KeyRing) else source.ring()


def key_directory() -> KeyDirectory | None:
    source = _source()
    return source if isinstance(source, KeyDirectory) else None


def local_jwks_document() -> dict[str, Any]:
    """The JWKS as published; the in-process verifier of this service reads it (BAZAAR_LOCAL_JWKS)."""
    return key_ring().jwks()
