"""RFC 9457 problem details for every error a Bazaar service returns.

Field errors are listed as ``{"field": "items.0.quantity", "reason": "..."}`` so a client can point
at the exact input that was wrong. Faults of a dependency are 503/504 with ``Retry-After``.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Callable
from typing import Any, TypeVar

from django.conf import settings
from django.core.exceptions import (
    DisallowedHost,
    PermissionDenied,
    RequestDataTooBig,
    SuspiciousOperation,
    TooManyFieldsSent,
    TooManyFilesSent,
)
from django.db import DatabaseError, DataError, InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.utils.safestring import SafeString, mark_safe
from django.views.debug import ExceptionReporter, SafeExceptionReporterFilter
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from bazaar_common import domain

ResponseT = TypeVar("ResponseT", bound=HttpResponse)

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

    status_code: int = status.HTTP_503_SERVICE_UNAVAILABLE
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
    domain.TooManyRequests: 429,
}
# Older names, kept so existing imports read the same: they are the domain errors.
Conflict = domain.Conflict
Unprocessable = domain.Unprocessable


# A Host header outside ALLOWED_HOSTS, answered alike by every service and the gateway's proxy path.
DISALLOWED_HOST_DETAIL = "The Host header names a host this service does not serve."
DISALLOWED_HOST_ERRORS = ({"field": "Host", "reason": "not in ALLOWED_HOSTS"},)


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "Request body too large."
    default_code = "too_large"


def client_fault_exception(exc: BaseException) -> exceptions.APIException | None:
    """What the client sent made Django (or the JSON decoder) give up: the 4xx to answer, naming
    the limit. Django raises these as SuspiciousOperation subclasses, which DRF does not know and
    which would otherwise end as a 500 (or, in development, as the debug page)."""
    if isinstance(exc, RequestDataTooBig):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return PayloadTooLarge(f"Request body larger than {limit} bytes (the limit).")
    if isinstance(exc, (TooManyFieldsSent, TooManyFilesSent)):
        limit = settings.DATA_UPLOAD_MAX_NUMBER_FIELDS
        return exceptions.ParseError(f"More than {limit} query parameters or form fields (the limit).")
    if isinstance(exc, DisallowedHost):
        return exceptions.ParseError(DISALLOWED_HOST_DETAIL)
    if isinstance(exc, SuspiciousOperation):
        return exceptions.ParseError("The request is malformed.")
    if isinstance(exc, RecursionError):
        return exceptions.ParseError("The request nests too deeply.")
    if isinstance(exc, (DataError, OverflowError)):
        # A number beyond what the database column holds (an id past the bigint range in a URL).
        return exceptions.ParseError("A value in the request is out of range.")
    if isinstance(exc, UnicodeDecodeError):
        return exceptions.ParseError("The request is not valid UTF-8.")
    return None


def domain_error_status(exc: domain.DomainError) -> int:
    for kind in type(exc).__mro__:
        if kind in DOMAIN_STATUS:
            return DOMAIN_STATUS[kind]
    return 400


def domain_error_response(exc: domain.DomainError, context: dict[str, Any] | None = None) -> Response:
    status_code = domain_error_status(exc)
    extra: dict[str, Any] = {"code": exc.code}
    if exc.field_errors:
        extra["errors"] = flatten_field_errors(exc.field_errors)
    set_rollback()  # as DRF does for its own exceptions: an atomic request's writes are undone
    response = Response(problem_body(status_code, exc.detail, **extra), status=status_code)
    response.content_type = PROBLEM_CONTENT_TYPE
    if isinstance(exc, domain.TooManyRequests):
        response["Retry-After"] = str(exc.retry_after)
    view, request = (context or {}).get("view"), (context or {}).get("request")
    if status_code == 401 and view is not None and request is not None:
        # The view's challenge, as DRF sends it with its own 401s.
        challenge = view.get_authenticate_header(request)
        if challenge:
            response["WWW-Authenticate"] = challenge
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
    exc = client_fault_exception(exc) or exc
    if isinstance(exc, domain.DomainError):
        return domain_error_response(exc, context)
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


def mark_dependency_fault(response: ResponseT) -> ResponseT:
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
        # Checked here, outside every other middleware: a bad Host raised further in would end as
        # Django's HTML 400 (the debug page in development, with the settings in it).
        try:
            request.get_host()
        except DisallowedHost:
            return problem_response(400, DISALLOWED_HOST_DETAIL, errors=list(DISALLOWED_HOST_ERRORS))
        response = self.get_response(request)
        if self._wants_json(request, response):
            return problem_response(response.status_code)
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if is_database_fault(exception):  # the admin's pages too: a blip is not a crash
            logger.warning("database unavailable", extra={"path": request.path, "error": str(exception)[:300]})
            return database_unavailable_response()
        client_fault = client_fault_exception(exception)
        if client_fault is not None:  # the admin's too: a client's limit is never a crash
            return problem_response(client_fault.status_code, str(client_fault.detail))
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
        """HTML error pages become problems; the admin keeps its 404/403 pages (for people), but
        a 400 or a 5xx is a problem everywhere (in development those are the debug page)."""
        status_code = response.status_code
        if status_code < 400 or not response.get("Content-Type", "").startswith(("text/html", "text/plain")):
            return False
        if self._is_admin(request):
            return status_code == 400 or status_code >= 500
        return True


class MaskingExceptionReporterFilter(SafeExceptionReporterFilter):
    """Masks every setting that can hold a credential in error reports (Sentry, mail, logs):
    Django's default list misses ``SERVICE_CREDENTIALS`` and URLs with passwords in them."""

    hidden_settings = re.compile(
        "API|TOKEN|KEY|SECRET|PASS|SIGNATURE|HTTP_COOKIE|CREDENTIAL|DSN|URL|AUTHORIZATION", flags=re.IGNORECASE
    )


class ProblemExceptionReporter(ExceptionReporter):
    """Django's debug page, replaced: even with ``DEBUG`` on, an error shows no traceback, no
    settings and no environment to whoever sent the request (development ports get exposed by
    mistake). The traceback goes to the log, as in production."""

    def _problem_text(self) -> str:
        return json.dumps(problem_body(500, "An unexpected error occurred; it has been logged."))

    def get_traceback_html(self) -> SafeString:
        return mark_safe(self._problem_text())  # JSON text, not HTML: nothing of the request in it

    def get_traceback_text(self) -> SafeString:
        return mark_safe(self._problem_text())


def json_404(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return problem_response(404)


def json_500(request: HttpRequest) -> JsonResponse:
    # Django calls this while handling the exception (one raised outside a view, e.g. in a
    # middleware): a database fault is a 503, whatever raised it.
    if is_database_fault(sys.exc_info()[1]):
        return database_unavailable_response()
    return problem_response(500, "An unexpected error occurred; it has been logged.")
