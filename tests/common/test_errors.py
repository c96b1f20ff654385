"""Every error is a JSON problem (RFC 9457) naming the field and reason; never an HTML page."""

from __future__ import annotations

import json

import pytest
from django.db import IntegrityError, InterfaceError, OperationalError
from django.test import RequestFactory
from rest_framework import serializers
from rest_framework.test import APIRequestFactory
from rest_framework.views import APIView

from bazaar_common.errors import (
    DEPENDENCY_FAULT,
    DEPENDENCY_FAULT_HEADER,
    JsonErrorMiddleware,
    ServiceUnavailable,
    flatten_field_errors,
    is_database_fault,
    json_500,
    problem_exception_handler,
)


class _Input(serializers.Serializer):
    quantity = serializers.IntegerField(min_value=1)
    lines = serializers.ListField(child=serializers.DictField(), required=False)


class _EchoApi(APIView):
    authentication_classes: list = []
    permission_classes: list = []

    def post(self, request):
        _Input(data=request.data).is_valid(raise_exception=True)
        raise ServiceUnavailable("The catalog is unavailable.", retry_after=7)


def _call(body):
    request = APIRequestFactory().post("/echo", body, format="json")
    return _EchoApi.as_view()(request).render()


def test_validation_error_is_a_problem_listing_each_field_and_reason():
    response = _call({"quantity": 0})

    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert response.data == {
        "type": "about:blank",
        "title": "Invalid request",
        "status": 400,
        "detail": "One or more fields are invalid.",
        "errors": [{"field": "quantity", "reason": "Ensure this value is greater than or equal to 1."}],
    }


def test_dependency_fault_is_503_with_retry_after():
    response = _call({"quantity": 2})

    assert response.status_code == 503
    assert response["Retry-After"] == "7"
    assert response.data["detail"] == "The catalog is unavailable."
    assert response.data["code"] == "service_unavailable"


def test_nested_errors_are_flattened_with_dotted_paths():
    detail = {"items": [{}, {"quantity": ["Must be at least 1."]}], "non_field_errors": ["Empty."]}

    assert flatten_field_errors(detail) == [
        {"field": "items.1.quantity", "reason": "Must be at least 1."},
        {"field": "non_field_errors", "reason": "Empty."},
    ]


def test_an_exception_drf_does_not_know_is_left_for_the_json_500_middleware():
    assert problem_exception_handler(RuntimeError("boom"), {}) is None


@pytest.mark.django_db
def test_unknown_url_is_a_json_404_not_an_html_page(client):
    response = client.get("/no/such/page")

    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"
    assert response.json() == {"type": "about:blank", "title": "Not found", "status": 404}


@pytest.mark.django_db
def test_health_and_readiness(client):
    assert client.get("/healthz").json() == {"status": "ok", "service": "catalog"}
    assert client.get("/readyz").json() == {"status": "ready", "service": "catalog"}


def test_request_id_is_kept_when_valid_and_replaced_when_not(client, db):
    kept = client.get("/healthz", HTTP_X_REQUEST_ID="req-12345678")
    replaced = client.get("/healthz", HTTP_X_REQUEST_ID="bad id\nwith newline")

    assert kept["X-Request-ID"] == "req-12345678"
    assert len(replaced["X-Request-ID"]) == 32
    assert replaced["X-Request-ID"] != "bad id\nwith newline"


class _DatabaseGoneApi(APIView):
    authentication_classes: list = []
    permission_classes: list = []

    def get(self, request):
        raise OperationalError("terminating connection due to administrator command")


def test_a_lost_database_connection_in_an_api_is_503_with_retry_after_and_the_dependency_mark():
    request = APIRequestFactory().get("/db")

    response = _DatabaseGoneApi.as_view()(request).render()

    assert response.status_code == 503
    assert response["Content-Type"] == "application/problem+json"
    assert response["Retry-After"] == "2"
    assert response[DEPENDENCY_FAULT_HEADER] == DEPENDENCY_FAULT
    assert response.data == {
        "type": "about:blank",
        "title": "Service unavailable",
        "status": 503,
        "detail": "The database is unavailable for a moment; retry shortly.",
        "code": "database_unavailable",
    }


@pytest.mark.parametrize("path", ["/api/v1/whatever", "/admin/orders/"])
def test_a_database_fault_outside_drf_is_503_in_apis_and_admin_pages(rf, path):
    middleware = JsonErrorMiddleware(lambda request: None)

    response = middleware.process_exception(rf.get(path), InterfaceError("connection already closed"))

    assert response.status_code == 503
    assert response["Retry-After"] == "2"
    assert response[DEPENDENCY_FAULT_HEADER] == DEPENDENCY_FAULT
    assert json.loads(response.content)["code"] == "database_unavailable"


def test_a_database_fault_raised_in_a_middleware_is_503_not_500(rf):
    try:
        raise OperationalError("server closed the connection unexpectedly")
    except OperationalError:
        response = json_500(rf.get("/api/v1/whatever"))  # Django calls it inside the except

    assert response.status_code == 503
    assert response["Retry-After"] == "2"


def test_other_database_errors_are_still_500():
    assert is_database_fault(IntegrityError("duplicate key")) is False
    assert is_database_fault(OperationalError("too many clients")) is True
    assert json_500(RequestFactory().get("/x")).status_code == 500


def test_error_reports_mask_credentials_and_urls(settings, rf):
    from bazaar_common.errors import MaskingExceptionReporterFilter

    settings.SERVICE_CREDENTIALS = "orders:orders-secret"
    settings.REDIS_URL = "redis://:hunter2@cache:6379/0"
    shown = MaskingExceptionReporterFilter().get_safe_settings()
    assert shown["SERVICE_CREDENTIALS"] == MaskingExceptionReporterFilter.cleansed_substitute
    assert shown["REDIS_URL"] == MaskingExceptionReporterFilter.cleansed_substitute


def test_the_debug_page_shows_no_traceback_or_settings_even_with_debug_on(settings, rf):
    import sys

    from django.views.debug import technical_500_response

    settings.DEBUG = True
    settings.SERVICE_CREDENTIALS = "orders:orders-secret"
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        response = technical_500_response(rf.get("/admin/x", HTTP_ACCEPT="text/html"), *sys.exc_info())
    text = response.content.decode()
    assert "orders-secret" not in text
    assert "Traceback" not in text
    assert "boom" not in text
