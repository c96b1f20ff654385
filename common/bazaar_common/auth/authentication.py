"""The DRF authentication class every service uses: local verification, no call per request."""

from __future__ import annotations

from typing import Any

from rest_framework import authentication, exceptions

from bazaar_common.auth import revocation
from bazaar_common.auth.tokens import InvalidToken, Principal, verify_access_token

REVOKED = "Token has been revoked; sign in again."


class JWTAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request: Any) -> tuple[Principal, str] | None:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        parts = header.split()
        if len(parts) != 2 or parts[0] != self.keyword:
            raise exceptions.AuthenticationFailed("Authorization header must be 'Bearer <token>'.")
        try:
            principal = verify_access_token(parts[1])
        except InvalidToken as exc:
            raise exceptions.AuthenticationFailed(str(exc)) from exc
        # Service tokens are never revoked per user; a user's is, at once (one Redis GET).
        if not principal.is_service and revocation.is_revoked(principal.id, principal.claims):
            raise exceptions.AuthenticationFailed(REVOKED)
        return principal, parts[1]

    def authenticate_header(self, request: Any) -> str:
        return 'Bearer realm="bazaar"'


# Registers the OpenAPI security scheme for this class (drf-spectacular finds extensions on import).
from bazaar_common.auth import schema as _schema  # noqa: E402, F401
