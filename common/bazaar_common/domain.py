"""Domain errors: what a service says when a business rule refuses a request.

Services and selectors raise these, never DRF exceptions, so the domain does not depend on HTTP.
:func:`bazaar_common.errors.problem_exception_handler` maps each kind to its status and problem body
in one place (``InvalidInput`` 400, ``NotAuthenticated`` 401, ``Forbidden`` 403, ``NotFound`` 404,
``Conflict`` 409, ``Unprocessable`` 422, ``TooManyRequests`` 429 with ``Retry-After``).

``field_errors`` names the input at fault (``{"sku": ["..."]}``, nested for nested input); it becomes
the problem body's ``errors`` list of ``{field, reason}``.
"""

from __future__ import annotations

from typing import Any, ClassVar


class DomainError(Exception):
    default_detail: ClassVar[str] = "The request was refused."
    default_code: ClassVar[str] = "refused"

    def __init__(
        self,
        detail: str | None = None,
        *,
        code: str | None = None,
        field_errors: dict[str, Any] | None = None,
    ) -> None:
        self.detail = detail or self.default_detail
        self.code = code or self.default_code
        self.field_errors = field_errors or {}
        super().__init__(self.detail)


class InvalidInput(DomainError):
    """The input breaks a rule only the domain knows (a duplicate SKU, an unsupported currency)."""

    default_detail = "One or more fields are invalid."
    default_code = "invalid"

    def __init__(self, field_errors: dict[str, Any], *, detail: str | None = None, code: str | None = None) -> None:
        super().__init__(detail, code=code, field_errors=field_errors)


class NotAuthenticated(DomainError):
    default_detail = "Authentication credentials were not provided or are not valid."
    default_code = "not_authenticated"


class CredentialsRefused(NotAuthenticated):
    """Credentials were given and are wrong (a bad password, an invalid or revoked token)."""

    default_detail = "The credentials are not valid."
    default_code = "authentication_failed"


class Forbidden(DomainError):
    default_detail = "You may not do this."
    default_code = "forbidden"


class NotFound(DomainError):
    """The one way to say 404: the thing does not exist, or does not exist for this caller."""

    default_detail = "Not found."
    default_code = "not_found"


class Conflict(DomainError):
    default_detail = "The request conflicts with the current state of the resource."
    default_code = "conflict"


class Unprocessable(DomainError):
    default_detail = "The request cannot be processed."
    default_code = "unprocessable"


class TooManyRequests(DomainError):
    """A limit on attempts was reached; ``retry_after`` seconds until the next one may succeed."""

    default_detail = "Too many requests. Try again later."
    default_code = "throttled"

    def __init__(self, detail: str | None = None, *, retry_after: int, code: str | None = None) -> None:
        super().__init__(detail, code=code)
        self.retry_after = max(int(retry_after), 1)


def get_or_404(queryset: Any, detail: str = "Not found.", **lookup: Any) -> Any:
    """``queryset.get(**lookup)`` or :class:`NotFound` (a malformed id finds nothing, too)."""
    from django.core.exceptions import ValidationError as DjangoValidationError

    try:
        found = queryset.filter(**lookup).first()
    except (ValueError, TypeError, DjangoValidationError):
        found = None
    if found is None:
        raise NotFound(detail)
    return found
