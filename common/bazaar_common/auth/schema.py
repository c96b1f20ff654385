"""OpenAPI description of the platform's bearer authentication (read by drf-spectacular)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class BazaarJWTScheme(OpenApiAuthenticationExtension):
    target_class = "bazaar_common.auth.authentication.JWTAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT (RS256, issued by /api/v1/auth/token)",
        }
