"""Verifying a Bazaar access token: pinned algorithm, required claims, issuer and audience."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any

import jwt

from bazaar_common.auth.keys import KeySet, default_keyset

ALGORITHM = "RS256"
REQUIRED_CLAIMS = ["exp", "iat", "sub", "iss", "aud", "jti", "token_type"]
MAX_LEEWAY_SECONDS = 60
# A kid only ever selects a key from our own JWKS; anything else (paths, SQL, URLs) is refused.
_SAFE_KID = re.compile(r"[A-Za-z0-9_-]{1,64}")
MAX_TOKEN_LENGTH = 8192

ROLE_CUSTOMER = "customer"
ROLE_MERCHANT = "merchant"
ROLE_SUPPORT = "support"
ROLE_ADMIN = "admin"
ROLE_SERVICE = "service"
USER_ROLES = (ROLE_CUSTOMER, ROLE_MERCHANT, ROLE_SUPPORT, ROLE_ADMIN)
# Roles that may enter a Django admin (the customer role alone may not).
STAFF_ROLES = frozenset({ROLE_MERCHANT, ROLE_SUPPORT, ROLE_ADMIN})


class InvalidToken(Exception):
    """The token is not one this platform issued for this use; the reason is safe to show."""


@dataclass(frozen=True)
class Principal:
    """Who is calling: a user (by id and roles) or a service."""

    id: str
    roles: frozenset[str]
    claims: dict[str, Any] = field(default_factory=dict, compare=False)

    is_authenticated = True
    is_anonymous = False

    @property
    def pk(self) -> str:
        return self.id

    @property
    def is_service(self) -> bool:
        return ROLE_SERVICE in self.roles

    @property
    def is_staff_member(self) -> bool:
        return bool(self.roles & {ROLE_SUPPORT, ROLE_ADMIN})

    def has_role(self, *roles: str) -> bool:
        return bool(self.roles & set(roles))


def issuer() -> str:
    return os.environ.get("JWT_ISSUER", "bazaar-auth")


def audience() -> str:
    return os.environ.get("JWT_AUDIENCE", "bazaar")


def leeway_seconds() -> int:
    """Clock-skew allowance, never more than a minute whatever the environment says."""
    try:
        configured = int(os.environ.get("JWT_LEEWAY_SECONDS", "30"))
    except ValueError:
        configured = 30
    return max(0, min(configured, MAX_LEEWAY_SECONDS))


def verify_access_token(token: str, *, keyset: KeySet | None = None) -> Principal:
    """Return the caller of a valid access token, or raise :class:`InvalidToken`.

    Every check is explicit rather than left to library defaults: the algorithm is pinned to RS256
    (no ``none``, no HMAC with the public key as secret), the key is chosen only by a well-formed
    ``kid`` among the published keys (never from ``jku``/``jwk``/``x5u`` headers), ``exp`` and the
    other claims are required, ``iss`` and ``aud`` must equal ours exactly, and the token must be
    an access token (a refresh token is refused).
    """
    keys = keyset or default_keyset
    if not isinstance(token, str) or token.count(".") != 2 or len(token) > MAX_TOKEN_LENGTH:
        raise InvalidToken("Malformed token.")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise InvalidToken("Malformed token.") from exc
    if header.get("alg") != ALGORITHM:
        raise InvalidToken("Token algorithm not allowed.")
    kid = header.get("kid")
    if not isinstance(kid, str) or not _SAFE_KID.fullmatch(kid):
        raise InvalidToken("Token key id is missing or malformed.")
    key = keys.get(kid)
    if key is None:
        raise InvalidToken("Token signed by an unknown key.")
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            audience=audience(),
            issuer=issuer(),
            leeway=leeway_seconds(),
            options={
                "require": REQUIRED_CLAIMS,
                "verify_signature": True,
                "verify_exp": True,
                "verify_iat": True,
                "verify_iss": True,
                "verify_aud": True,
                "strict_aud": True,
            },
        )
    except jwt.ExpiredSignatureError as exc:
        raise InvalidToken("Token has expired.") from exc
    except jwt.PyJWTError as exc:
        raise InvalidToken(f"Token is invalid: {exc}") from exc
    # PyJWT compares a string issuer exactly; re-checked here so a library change cannot loosen it.
    if claims.get("iss") != issuer():
        raise InvalidToken("Token is invalid: Invalid issuer")
    if claims.get("token_type") != "access":
        raise InvalidToken("Not an access token.")
    # PyJWT accepts a numeric *string* exp/iat (it calls int() on them); everything after
    # verification compares them as numbers, so a string would crash a caller instead of failing here.
    for name in ("exp", "iat"):
        value = claims.get(name)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InvalidToken(f"Token claim '{name}' must be a number.")
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise InvalidToken("Token subject is malformed.")
    roles = claims.get("roles", [])
    if not isinstance(roles, list) or not all(isinstance(role, str) for role in roles):
        raise InvalidToken("Token roles are malformed.")
    return Principal(id=subject, roles=frozenset(roles), claims=claims)
