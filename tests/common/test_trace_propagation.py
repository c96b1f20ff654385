"""Trace context across hops: each upstream attempt is a client span whose context the upstream
receives in ``traceparent``; a message written to the outbox carries the writer's trace context.

A real HTTP server receives the calls; spans go to the SDK's in-memory exporter.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from opentelemetry import trace

from bazaar_common import observability
from bazaar_common.discovery import Instance
from bazaar_common.http import ServiceClient
from bazaar_common.outbox.services import message_headers


def _traceparent(context: trace.SpanContext) -> str:
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"


@pytest.fixture
def traced(monkeypatch, span_exporter):
    """Tracing on, with no spans yet; the spans finished during the test."""
    monkeypatch.setattr(observability, "_tracing", True)
    span_exporter.clear()
    return span_exporter


@pytest.fixture
def upstream():
    received: list[dict[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's naming
            received.append({name.lower(): value for name, value in self.headers.items()})
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", received
    server.shutdown()
    server.server_close()


def test_an_upstream_call_is_a_child_client_span_whose_context_the_upstream_receives(traced, upstream):
    base_url, received = upstream
    instance = Instance(service="catalog", instance_id="catalog-1", base_url=base_url)
    client = ServiceClient(lambda service: [instance])
    tracer = trace.get_tracer("test")

    with tracer.start_as_current_span("checkout") as parent:
        response = client.request(
            "catalog", "GET", "/internal/products", headers={"traceparent": "00-" + "1" * 32 + "-" + "2" * 16 + "-01"}
        )

    assert response.status == 200
    spans = {span.name: span for span in traced.get_finished_spans()}
    attempt = spans["GET catalog"]
    assert attempt.kind == trace.SpanKind.CLIENT
    assert attempt.parent.span_id == parent.get_span_context().span_id
    assert attempt.context.trace_id == parent.get_span_context().trace_id
    assert attempt.attributes["http.response.status_code"] == 200
    # The upstream sees the attempt's own context, not a stale one passed in by the caller.
    assert received[0]["traceparent"] == _traceparent(attempt.context)


def test_an_outbox_message_carries_the_trace_context_of_the_code_that_wrote_it(traced):
    with trace.get_tracer("test").start_as_current_span("order checkout") as span:
        headers = message_headers()

    context = span.get_span_context()
    assert headers["traceparent"] == _traceparent(context)


def test_without_a_span_an_outbox_message_carries_no_trace_context(traced):
    assert "traceparent" not in message_headers()
