"""Trace context across hops: each upstream attempt is a client span whose context the upstream
receives in ``traceparent``; a message written to the outbox carries the writer's trace context.

A real HTTP server receives the calls; spans go to the SDK's in-memory exporter.
"""

from __future__ import annotations

import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import urllib3
from opentelemetry import trace

from bazaar_common.discovery import Instance
from bazaar_common.http import ServiceClient
from bazaar_common.outbox.services import message_headers


def _traceparent(context: trace.SpanContext) -> str:
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"


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


def _tracer(ratio: float):
    """A tracer of its own provider with the platform's sampler (the global one is the test's)."""
    from opentelemetry.sdk.trace import TracerProvider

    from bazaar_common.sampling import trace_sampler

    return TracerProvider(sampler=trace_sampler(ratio)).get_tracer("test")


def _kept(span) -> bool:
    return span.get_span_context().trace_flags.sampled


def test_requests_and_tasks_start_traces_but_a_client_call_on_behalf_of_nothing_does_not():
    tracer = _tracer(1.0)

    # Background polling (the outbox relay's query, a heartbeat, the broker's poll): no trace.
    with (
        tracer.start_as_current_span("SELECT", kind=trace.SpanKind.CLIENT) as poll,
        tracer.start_as_current_span("nested") as nested,
    ):
        pass
    request = tracer.start_span("GET /api/v1/orders", kind=trace.SpanKind.SERVER)
    task = tracer.start_span("run/orders.stock_reserved", kind=trace.SpanKind.CONSUMER)
    with trace.use_span(request, end_on_exit=True):
        call = tracer.start_span("GET catalog", kind=trace.SpanKind.CLIENT)

    assert (_kept(poll), _kept(nested)) == (False, False)
    assert (_kept(request), _kept(task), _kept(call)) == (True, True, True)
    assert call.get_span_context().trace_id == request.get_span_context().trace_id


def test_the_ratio_decides_new_traces_only_a_sampled_caller_is_always_followed():
    tracer = _tracer(0.0)
    caller = trace.set_span_in_context(
        trace.NonRecordingSpan(
            trace.SpanContext(0x1234, 0x5678, is_remote=True, trace_flags=trace.TraceFlags(trace.TraceFlags.SAMPLED))
        )
    )

    new = tracer.start_span("GET /api/v1/catalog/products", kind=trace.SpanKind.SERVER)
    continued = tracer.start_span("GET /api/v1/catalog/products", kind=trace.SpanKind.SERVER, context=caller)

    assert _kept(new) is False
    assert _kept(continued) is True
    assert continued.get_span_context().trace_id == 0x1234


def test_what_sentrys_transport_sends_is_not_traced_but_other_calls_to_the_same_host_are(traced, upstream, monkeypatch):
    from opentelemetry.instrumentation.urllib3 import URLLib3Instrumentor

    from bazaar_common import observability

    sentry_url, _ = upstream
    port = int(sentry_url.rsplit(":", 1)[1])
    URLLib3Instrumentor().uninstrument()
    monkeypatch.setenv("SENTRY_DSN", f"http://public@127.0.0.1:{port}/1")
    observability.instrument_http_client()
    elsewhere = "http://127.0.0.1:1"  # the same host, another port (nothing listens there)
    http = urllib3.PoolManager(retries=False)

    http.request("GET", f"{sentry_url}/api/1/envelope/")
    with pytest.raises(urllib3.exceptions.HTTPError):  # refused, but a span all the same
        http.request("GET", f"{elsewhere}/internal/products", timeout=1)
    http.request("GET", f"{sentry_url}/readyz")

    assert [span.attributes["url.full"] for span in traced.get_finished_spans()] == [f"{elsewhere}/internal/products"]


@pytest.mark.django_db
def test_a_consumers_acknowledgement_carries_the_trace_of_the_task_that_handled_the_message(traced):
    from bazaar_common.contracts import MessageAck
    from bazaar_common.outbox.models import OutboxMessage
    from bazaar_common.outbox.services import message_consume_once

    with trace.get_tracer("test").start_as_current_span("run/catalog.reserve_stock") as task:
        message_consume_once(message_id=str(uuid.uuid4()), task_name="tests.noop", handler=lambda: None,
                             reply_queue="orders")  # fmt: skip

    ack = OutboxMessage.objects.get(task_name=MessageAck.TASK)
    assert ack.headers["traceparent"] == _traceparent(task.get_span_context())
