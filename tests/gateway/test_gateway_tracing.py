"""The gateway's own spans on the proxy path (which bypasses Django): one server span per request,
continuing the caller's ``traceparent``, with one client span per upstream attempt whose context
the upstream receives. Real HTTP to a real backend; spans go to the SDK's in-memory exporter."""

from __future__ import annotations

import pytest
from opentelemetry import trace

pytestmark = pytest.mark.django_db(databases=[])
CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


@pytest.fixture
def traced_gateway(gateway_factory, traced):
    return gateway_factory()


def test_a_proxied_request_continues_the_callers_trace_through_the_gateway_to_the_upstream(
    traced_gateway, backend, span_exporter
):
    backend("catalog", "catalog-1")

    response = traced_gateway.request(
        "GET", "/api/v1/catalog/products", headers={"traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"}
    )

    assert response.status == 200
    spans = span_exporter.get_finished_spans()
    server = next(span for span in spans if span.kind == trace.SpanKind.SERVER)
    client = next(span for span in spans if span.kind == trace.SpanKind.CLIENT)
    assert len(spans) == 2
    assert f"{server.context.trace_id:032x}" == CALLER_TRACE
    assert f"{server.parent.span_id:016x}" == CALLER_SPAN
    assert server.attributes["http.route"] == "/api/v1/catalog"
    assert server.attributes["http.response.status_code"] == 200
    assert server.attributes["bazaar.request_id"] == response.headers["X-Request-ID"]
    assert client.parent.span_id == server.context.span_id
    received = response.json()["headers"]["traceparent"]
    assert received.split("-")[1:3] == [CALLER_TRACE, f"{client.context.span_id:016x}"]


def test_a_request_without_traceparent_starts_exactly_one_trace(traced_gateway, backend, span_exporter):
    backend("catalog", "catalog-1")

    response = traced_gateway.request("GET", "/api/v1/catalog/products")

    assert response.status == 200
    spans = span_exporter.get_finished_spans()
    assert len(spans) == 2
    assert len({span.context.trace_id for span in spans}) == 1
    server = next(span for span in spans if span.kind == trace.SpanKind.SERVER)
    assert server.parent is None
    assert response.json()["headers"]["traceparent"].split("-")[1] == f"{server.context.trace_id:032x}"


def test_the_public_port_answers_metrics_with_a_404_problem(gateway):
    response = gateway.request("GET", "/metrics")

    assert response.status == 404
    assert response.headers["Content-Type"].startswith("application/problem+json")
