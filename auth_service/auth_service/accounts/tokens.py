"""SimpleJWT tokens signed with the key ring: RS256, ``kid`` header, ``iss``/``aud`` enforced.

SimpleJWT's stock backend signs with one static key and sends no ``kid``; this backend signs with
the current key of the ring and verifies with whichever key the (validated) ``kid`` names, with the
same pinned checks as the platform's verifier.
"""

from __future__ import annotations

from typing import Any

import jwt
from django.conf import settings
from rest_framework_simplejwt.backends import TokenBackend
from rest_framework_simplejwt.exceptions import TokenBackendError, TokenBackendExpiredToken
from rest_framework_simplejwt.token_blacklist.models import OutstandingToken
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken, Token
from rest_framework_simplejwt.utils import datetime_from_epoch

from auth_service.accounts.keys import KID_PATTERN, key_ring
from auth_service.accounts.models import User
from bazaar_common.auth import revocation
from bazaar_common.auth import tokens as platform_tokens

ALGORITHM = platform_tokens.ALGORITHM
REQUIRED_CLAIMS = platform_tokens.REQUIRED_CLAIMS


class KeyRingTokenBackend(TokenBackend):
    def __init__(self) -> None:
        super().__init__(ALGORITHM, audience=platform_tokens.audience(), issuer=platform_tokens.issuer())

    def get_leeway(self) -> Any:
        from datetime import timedelta

        return timedelta(seconds=platform_tokens.leeway_seconds())

    def encode(self, payload: dict[str, Any]) -> str:
        ring = key_ring()
        claims = {**payload, "iss": platform_tokens.issuer(), "aud": platform_tokens.audience()}
        return jwt.encode(claims, ring.current_key, algorithm=ALGORITHM, headers={"kid": ring.current_kid})

    def decode(self, token: Any, verify: bool = True) -> dict[str, Any]:
        if not verify:
            raise TokenBackendError("Unverified decoding is not allowed.")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise TokenBackendError("Token is invalid") from exc
        kid = header.get("kid")
        if header.get("alg") != ALGORITHM or not isinstance(kid, str) or not KID_PATTERN.fullmatch(kid):
            raise TokenBackendError("Token is invalid")
        key = key_ring().verifying_key(kid)
        if key is None:
            raise TokenBackendError("Token is invalid")
        try:
            return jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=platform_tokens.audience(),
                issuer=platform_tokens.issuer(),
                leeway=platform_tokens.leeway_seconds(),
                options={"require": REQUIRED_CLAIMS, "strict_aud": True},
            )
        except jwt.ExpiredSignatureError as exc:
            raise TokenBackendExpiredToken("Token is expired") from exc
        except jwt.PyJWTError as exc:
            raise TokenBackendError("Token is invalid") from exc


_backend = KeyRingTokenBackend()


class BazaarAccessToken(AccessToken):
    _token_backend = _backend

    @property
    def lifetime(self) -> Any:  # type: ignore[override]
        return settings.SIMPLE_JWT["ACCESS_TOKEN_LIFETIME"]


class BazaarRefreshToken(RefreshToken):
    _token_backend = _backend
    access_token_class = BazaarAccessToken

    @property
    def lifetime(self) -> Any:  # type: ignore[override]
        return settings.SIMPLE_JWT["REFRESH_TOKEN_LIFETIME"]

    def verify(self, *args: Any, **kwargs: Any) -> None:
        # Signature, expiry, jti and type only: revocation is checked by the services under a row
        # lock, where a reused token can also be answered by revoking the whole family.
        Token.verify(self, *args, **kwargs)


def user_claims(user: User) -> dict[str, Any]:
    return {"roles": user.role_list, "email": user.email}


def refresh_token_for(user: User) -> BazaarRefreshToken:
    """A new refresh token carrying the user's current claims, recorded as outstanding."""
    refresh = BazaarRefreshToken()
    refresh["sub"] = str(user.pk)
    # The session's start to the millisecond (copied into its access tokens): a revocation in the
    # same second as a sign-in must not spare the sessions before it (bazaar_common.auth.revocation).
    refresh["iat_ms"] = revocation.now_ms()
    for claim, value in user_claims(user).items():
        refresh[claim] = value
    OutstandingToken.objects.create(
        user=user,
        jti=refresh["jti"],
        token=str(refresh),
        created_at=refresh.current_time,
        expires_at=datetime_from_epoch(refresh["exp"]),
    )
    return refresh


def service_access_token(client_id: str) -> BazaarAccessToken:
    token = BazaarAccessToken()
    token["sub"] = f"service:{client_id}"
    token["roles"] = [platform_tokens.ROLE_SERVICE]
    return token
