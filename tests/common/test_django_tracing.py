"""Django's server spans as ``init_observability`` sets them up (``instrument_django``).

OpenTelemetry's Django middleware reads the Host for its span attributes; placed outermost (its
default) it met a foreign Host before our check did, and Django answered with its own 400. Placed
inside the check, it also starts after the request id middleware, so the span is tagged by a hook.
"""

import pytest
from django.conf import settings
from django.test import Client
from opentelemetry import trace
from opentelemetry.instrumentation.django import DjangoInstrumentor

from bazaar_common.observability import HOST_CHECK_MIDDLEWARE, instrument_django


@pytest.fixture
def traced_django(traced):
    instrumentor = DjangoInstrumentor()
    assert not instrumentor.is_instrumented_by_opentelemetry
    instrument_django()
    try:
        yield traced
    finally:
        instrumentor.uninstrument()


def test_the_span_middleware_sits_just_inside_the_host_check(traced_django):
    position = settings.MIDDLEWARE.index(HOST_CHECK_MIDDLEWARE)
    assert settings.MIDDLEWARE[position + 1] == DjangoInstrumentor._opentelemetry_middleware


@pytest.mark.parametrize("path", ["/api/v1/catalog/products", "/no/such/page", "/admin/login/"])
def test_a_foreign_host_is_a_problem_naming_the_header_with_tracing_on(traced_django, path):
    response = Client().get(path, HTTP_HOST="evil.example")
    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/problem+json")
    assert response.json()["errors"] == [{"field": "Host", "reason": "not in ALLOWED_HOSTS"}]


@pytest.mark.parametrize("sent", ["e2e-caller-0001", None])
def test_the_server_span_carries_the_request_id_the_response_names(traced_django, sent):
    headers = {"HTTP_X_REQUEST_ID": sent} if sent else {}
    response = Client().get("/no/such/page", **headers)

    (server,) = [span for span in traced_django.get_finished_spans() if span.kind == trace.SpanKind.SERVER]
    assert server.attributes["bazaar.request_id"] == response["X-Request-ID"]
    assert sent is None or response["X-Request-ID"] == sent
