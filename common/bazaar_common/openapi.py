"""How every service documents itself for drf-spectacular, in one place.

:class:`BazaarAutoSchema` (every service's ``DEFAULT_SCHEMA_CLASS``) adds to each operation the
errors the platform can answer, as ``application/problem+json`` bodies of one ``Problem`` schema
(the body :mod:`bazaar_common.errors` writes), by rule rather than per view:

======  =====================================================================================
400     always (a field error, a malformed body, too many query parameters, a bad ``Host``)
401     when the operation needs a token, or takes credentials (a view with a challenge of its own)
403     when the operation needs a token (a role the token lacks, a token of the wrong kind)
404     when the path has parameters
413     for writes (a body over ``DATA_UPLOAD_MAX_MEMORY_SIZE``, or the gateway's limit)
415     when the operation takes a request body (JSON only)
429     always (the gateway's rate limits), with ``Retry-After`` and the ``RateLimit`` headers
503     always (a dependency is away, a breaker is open), with ``Retry-After``
504     always (a dependency or the upstream did not answer in time), with ``Retry-After``
======  =====================================================================================

The platform never answers 502: an upstream's bad answer is retried elsewhere or becomes a 503.

Errors only some operations answer (409, 410, 422, …) are declared on the view, without a body:
``@extend_schema(responses={..., 409: OpenApiResponse(description="…")})``; the ``Problem`` body
is filled in here. A view that declares a code keeps its description.

A list view says ``pagination_class = BazaarPagination`` and documents ``Output(many=True)``: the
answer is then documented as the paginated envelope it is, with its ``page``/``page_size``.
"""

from __future__ import annotations

import re
from typing import Any

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import ResolvedComponent
from rest_framework.views import APIView

from bazaar_common.errors import PROBLEM_CONTENT_TYPE, TITLES

PROBLEM = "Problem"
FIELD_ERROR = "FieldError"

FIELD_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "One input that was refused: where it is (dotted path) and why.",
    "properties": {
        "field": {"type": "string", "example": "lines.0.quantity"},
        "reason": {"type": "string", "example": "Ensure this value is less than or equal to 1000."},
    },
    "required": ["field", "reason"],
}
PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "An error, as RFC 9457 problem details.",
    "properties": {
        "type": {"type": "string", "example": "about:blank"},
        "title": {"type": "string", "example": "Invalid request"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599, "example": 400},
        "detail": {"type": "string", "example": "One or more fields are invalid."},
        "code": {"type": "string", "description": "A stable, machine-readable reason."},
        "errors": {
            "type": "array",
            "description": "The refused inputs (400 and some 409/422).",
            "items": {"$ref": f"#/components/schemas/{FIELD_ERROR}"},
        },
    },
    "required": ["type", "title", "status"],
}

RETRY_AFTER_HEADER: dict[str, Any] = {
    "description": "Seconds to wait before trying again.",
    "schema": {"type": "integer", "minimum": 0},
}
RATE_LIMIT_HEADERS: dict[str, Any] = {
    "Retry-After": RETRY_AFTER_HEADER,
    "RateLimit": {
        "description": 'The limit that applies, its remaining quota and reset (``"name";r=0;t=42``).',
        "schema": {"type": "string"},
    },
    "RateLimit-Policy": {
        "description": 'The rate-limit policy (``"name";q=<requests>;w=<seconds>``).',
        "schema": {"type": "string"},
    },
    "RateLimit-Limit": {"description": "Requests allowed per window.", "schema": {"type": "integer"}},
    "RateLimit-Remaining": {"description": "Requests left in this window.", "schema": {"type": "integer"}},
    "RateLimit-Reset": {"description": "Seconds until the window resets.", "schema": {"type": "integer"}},
}

DESCRIPTIONS = {
    400: "Invalid request: `errors` lists each refused field and the reason.",
    401: "No valid access token (missing, expired, revoked or forged).",
    403: "The token does not allow this (a role it lacks, or a token of the wrong kind).",
    404: "No such resource (or not yours).",
    409: "Conflicts with the current state of the resource.",
    413: "The request body is larger than the limit.",
    415: "The request body is not JSON.",
    422: "Well-formed but cannot be carried out.",
    429: "Too many requests: wait `Retry-After` seconds.",
    503: "A service this request needs is unavailable for a moment: retry after `Retry-After` seconds.",
    504: "A service this request needs did not answer in time: retry after `Retry-After` seconds.",
}
ERROR_HEADERS: dict[int, dict[str, Any]] = {
    429: RATE_LIMIT_HEADERS,
    503: {"Retry-After": RETRY_AFTER_HEADER},
    504: {"Retry-After": RETRY_AFTER_HEADER},
}
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_PATH_PARAMETER = re.compile(r"{[^}]+}")


def problem_ref() -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{PROBLEM}"}


def problem_response(status_code: int, description: str | None = None) -> dict[str, Any]:
    """The OpenAPI response object of one error status."""
    response: dict[str, Any] = {
        "description": description or DESCRIPTIONS.get(status_code) or TITLES.get(status_code, "Error"),
        "content": {PROBLEM_CONTENT_TYPE: {"schema": problem_ref()}},
    }
    headers = ERROR_HEADERS.get(status_code)
    if headers:
        response["headers"] = dict(headers)
    return response


class BazaarAutoSchema(AutoSchema):
    """drf-spectacular's AutoSchema, plus the platform's error responses (see the module doc)."""

    def _register_problem_components(self) -> None:
        for name, schema in ((FIELD_ERROR, FIELD_ERROR_SCHEMA), (PROBLEM, PROBLEM_SCHEMA)):
            self.registry.register_on_missing(
                ResolvedComponent(name=name, type=ResolvedComponent.SCHEMA, object=f"bazaar:{name}", schema=schema)
            )

    def _needs_token(self) -> bool:
        security = self.get_auth()
        return bool(security) and {} not in security

    def _takes_credentials(self) -> bool:
        """A view that answers 401 to refused credentials in its body (sign-in, refresh, …)."""
        return type(self.view).get_authenticate_header is not APIView.get_authenticate_header

    def _takes_body(self) -> bool:
        return self.method in BODY_METHODS | {"DELETE"} and self.get_request_serializer() is not None

    def get_request_serializer(self) -> Any:
        # A DELETE has a body only when its view declares one (extend_schema(request=…) answers
        # before this); none is guessed from the view.
        if self.method == "DELETE":
            return None
        return super().get_request_serializer()

    def _get_request_body(self, direction: str = "request") -> Any:
        """drf-spectacular documents a body for PUT, PATCH and POST only; a DELETE that declares
        one (``extend_schema(request=…)``, e.g. erasure confirmed by password) documents it too."""
        if self.method != "DELETE" or self.get_request_serializer() is None:
            return super()._get_request_body(direction)
        self.method = "POST"
        try:
            return super()._get_request_body(direction)
        finally:
            self.method = "DELETE"

    def error_statuses(self) -> list[int]:
        """The error statuses every operation like this one can answer (the module's table)."""
        statuses = [400]
        if self._needs_token():
            statuses += [401, 403]
        elif self._takes_credentials():
            statuses.append(401)
        if _PATH_PARAMETER.search(self.path):
            statuses.append(404)
        if self.method in WRITE_METHODS:
            statuses.append(413)
        if self._takes_body():
            statuses.append(415)
        return [*statuses, 429, 503, 504]

    def _get_response_bodies(self, direction: str = "response") -> dict[str, Any]:
        responses: dict[str, Any] = super()._get_response_bodies(direction)  # type: ignore[arg-type]
        if direction != "response":
            return responses
        self._register_problem_components()
        for code, response in responses.items():
            # An error the view declared without a body (a description only): the problem body.
            if code[:1] in ("4", "5") and "content" not in response:
                declared = problem_response(int(code), response.get("description") or None)
                declared.setdefault("headers", {}).update(response.get("headers", {}))
                if not declared["headers"]:
                    del declared["headers"]
                responses[code] = declared
        for status_code in self.error_statuses():
            responses.setdefault(str(status_code), problem_response(status_code))
        return dict(sorted(responses.items()))
