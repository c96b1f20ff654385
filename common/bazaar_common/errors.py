"""RFC 9457 problem details for every error a Bazaar service returns.

Field errors are listed as ``{"field": "items.0.quantity", "reason": "..."}`` so a client can point
at the exact input that was wrong. Faults of a dependency are 503/504 with ``Retry-After``.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from bazaar_common import domain

logger = logging.getLogger(__name__)
PROBLEM_CONTENT_TYPE = "application/problem+json"
# A 503/504 a service answers because something it depends on (another service, its database,
# the broker) is away, not because the instance itself is failing. Callers (the gateway) must not
# count it against the instance's or the service's breaker: other routes of the same service
# that do not need that dependency keep working.
DEPENDENCY_FAULT_HEADER = "Bazaar-Fault"
DEPENDENCY_FAULT = "dependency"
DATABASE_RETRY_AFTER_SECONDS = 2

TITLES = {
    400: "Invalid request",
    401: "Not authenticated",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    409: "Conflict",
    413: "Request body too large",
    415: "Unsupported media type",
    422: "Unprocessable request",
    429: "Too many requests",
    500: "Internal error",
    502: "Bad gateway",
    503: "Service unavailable",
    504: "Gateway timeout",
}


class ServiceUnavailable(exceptions.APIException):
    """A dependency (another service, the broker) cannot serve us now; the client may retry."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "A service this request depends on is unavailable; retry later."
    default_code = "service_unavailable"

    def __init__(self, detail: str | None = None, *, retry_after: int = 5) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class DatabaseUnavailable(ServiceUnavailable):
    default_detail = "The database is unavailable for a moment; retry shortly."
    default_code = "database_unavailable"


def is_database_fault(exc: BaseException | None) -> bool:
    """A lost or refused database connection (not a bad query or a constraint violation)."""
    while exc is not None:
        if isinstance(exc, (OperationalError, InterfaceError)) or type(exc) is DatabaseError:
            return True
        exc = exc.__cause__
    return False


class GatewayTimeout(ServiceUnavailable):
    status_code = status.HTTP_504_GATEWAY_TIMEOUT
    default_detail = "A service this request depends on did not answer in time."
    default_code = "timeout"


# Domain errors -> HTTP status, in this one place (services raise them; see bazaar_common.domain).
DOMAIN_STATUS: dict[type[domain.DomainError], int] = {
    domain.InvalidInput: 400,
    domain.NotAuthenticated: 401,
    domain.Forbidden: 403,
    domain.NotFound: 404,
    domain.Conflict: 409,
    domain.Unprocessable: 422,
}
# Older names, kept so existing imports read the same: they are the domain errors.
Conflict = domain.Conflict
Unprocessable = domain.Unprocessable


def domain_error_status(exc: domain.DomainError) -> int:
    for kind in type(exc).__mro__:
        if kind in DOMAIN_STATUS:
            return DOMAIN_STATUS[kind]  # type: ignore[index]
    return 400


def domain_error_response(exc: domain.DomainError) -> Response:
    status_code = domain_error_status(exc)
    extra: dict[str, Any] = {"code": exc.code}
    if exc.field_errors:
        extra["errors"] = flatten_field_errors(exc.field_errors)
    set_rollback()  # as DRF does for its own exceptions: an atomic request's writes are undone
    response = Response(problem_body(status_code, exc.detail, **extra), status=status_code)
    response.content_type = PROBLEM_CONTENT_TYPE
    return response


def problem_body(status_code: int, detail: Any = None, *, title: str | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title or TITLES.get(status_code, "Error"),
        "status": status_code,
    }
    if detail is not None:
        body["detail"] = detail
    body.update({key: value for key, value in extra.items() if value is not None})
    return body


def problem_response(
    status_code: int,
    detail: Any = None,
    *,
    retry_after: int | None = None,
    title: str | None = None,
    **extra: Any,
) -> JsonResponse:
    """A plain Django response (for middleware and non-DRF views)."""
    response = JsonResponse(
        problem_body(status_code, detail, title=title, **extra),
        status=status_code,
        content_type=PROBLEM_CONTENT_TYPE,
    )
    if retry_after is not None:
        response["Retry-After"] = str(retry_after)
    return response


def flatten_field_errors(detail: Any, prefix: str = "") -> list[dict[str, str]]:
    """Turn DRF's nested error structure into a flat list of ``{field, reason}``."""
    if isinstance(detail, dict):
        errors: list[dict[str, str]] = []
        for key, value in detail.items():
            field = str(key) if not prefix else f"{prefix}.{key}"
            if key == "non_field_errors":
                field = prefix or "non_field_errors"
            errors.extend(flatten_field_errors(value, field))
        return errors
    if isinstance(detail, list):
        if all(not isinstance(item, (dict, list)) for item in detail):
            return [{"field": prefix or "non_field_errors", "reason": str(item)} for item in detail]
        errors = []
        for index, item in enumerate(detail):
            if item:
                errors.extend(flatten_field_errors(item, f"{prefix}.{index}" if prefix else str(index)))
        return errors
    return [{"field": prefix or "non_field_errors", "reason": str(detail)}]


def problem_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, reshaped into problem details."""
    if isinstance(exc, domain.DomainError):
        return domain_error_response(exc)
    if is_database_fault(exc):
        logger.warning("database unavailable", extra={"error": f"{exc.__class__.__name__}: {exc}"[:300]})
        exc = DatabaseUnavailable(retry_after=DATABASE_RETRY_AFTER_SECONDS)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # JsonErrorMiddleware turns it into a JSON 500 and logs it.
    status_code = response.status_code
    if isinstance(exc, exceptions.ValidationError):
        body = problem_body(
            status_code,
            "One or more fields are invalid.",
            errors=flatten_field_errors(exc.detail),
        )
    else:
        detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
        if isinstance(detail, (dict, list)):
            body = problem_body(status_code, "The request was refused.", errors=flatten_field_errors(detail))
        else:
            code = getattr(detail, "code", None)
            body = problem_body(status_code, str(detail), code=code)
    response.data = body
    response.content_type = PROBLEM_CONTENT_TYPE
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is None and status_code == 429:
        retry_after = getattr(exc, "wait", None)
    if retry_after is not None:
        response["Retry-After"] = str(int(retry_after) if retry_after >= 1 else 1)
    if isinstance(exc, ServiceUnavailable):
        mark_dependency_fault(response)
    return response


def mark_dependency_fault(response: HttpResponse) -> HttpResponse:
    """Say in a header that this 503/504 is a dependency's outage (the body stays as it is)."""
    response[DEPENDENCY_FAULT_HEADER] = DEPENDENCY_FAULT
    return response


def database_unavailable_response() -> JsonResponse:
    response = problem_response(
        503,
        DatabaseUnavailable.default_detail,
        retry_after=DATABASE_RETRY_AFTER_SECONDS,
        code=DatabaseUnavailable.default_code,
    )
    return mark_dependency_fault(response)


class JsonErrorMiddleware:
    """Make Django's own 404/500 (outside DRF views) JSON problems instead of HTML pages.

    The admin and its login pages keep their HTML: they are for people.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code in (404, 405, 400, 403, 500) and self._wants_json(request, response):
            return problem_response(response.status_code)
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if is_database_fault(exception):  # the admin's pages too: a blip is not a crash
            logger.warning("database unavailable", extra={"path": request.path, "error": str(exception)[:300]})
            return database_unavailable_response()
        if self._is_admin(request):
            return None
        if isinstance(exception, domain.DomainError):
            errors = flatten_field_errors(exception.field_errors) if exception.field_errors else None
            return problem_response(
                domain_error_status(exception), exception.detail, code=exception.code, errors=errors
            )
        if isinstance(exception, Http404):
            return problem_response(404)
        if isinstance(exception, PermissionDenied):
            return problem_response(403)
        logger.exception("unhandled error", extra={"path": request.path})
        return problem_response(500, "An unexpected error occurred; it has been logged.")

    @staticmethod
    def _is_admin(request: HttpRequest) -> bool:
        return request.path.startswith("/admin") or request.path.startswith("/dashboard")

    def _wants_json(self, request: HttpRequest, response: HttpResponse) -> bool:
        if self._is_admin(request):
            return False
        content_type = response.get("Content-Type", "")
        return content_type.startswith("text/html")


def json_404(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return problem_response(404)


def json_500(request: HttpRequest) -> JsonResponse:
    # Django calls this while handling the exception (one raised outside a view, e.g. in a
    # middleware): a database fault is a 503, whatever raised it.
    if is_database_fault(sys.exc_info()[1]):
        return database_unavailable_response()
    return problem_response(500, "An unexpected error occurred; it has been logged.")
