"""One trace per request across every hop, as a collector receives it from the running platform.

Every process of the session platform exports its spans with OpenTelemetry's OTLP/HTTP exporter
to a receiver in this test process (:mod:`bazaar_devtools.otlp`, the protobuf decoded with
``opentelemetry-proto``). A checkout and its payment, a cancellation and an erasure go through the
gateway; their spans are checked as a trace viewer would draw them: one trace id, every parent a
span of the same trace (or the caller's), and the hops gateway → orders → catalog/auth/profiles →
outbox relay → catalog worker → its reply → orders worker in the right order.
"""

from __future__ import annotations

import gzip
import json
import secrets
import threading
import time
import uuid
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from celery import Celery

from bazaar_common import contracts
from bazaar_devtools.e2e import E2EPlatform, wait_for
from bazaar_devtools.faults import frozen
from bazaar_devtools.otlp import ReceivedSpan, Recording

REQUEST_ID = "bazaar.request_id"


@pytest.fixture
def recording(platform: E2EPlatform):
    assert platform.traces is not None, "the e2e platform exports to the session's OTLP receiver"
    with platform.traces.recording() as recording:
        yield recording


class Caller:
    """The test as a traced client: its own trace id, one client span id per request."""

    def __init__(self) -> None:
        self.trace_id = secrets.token_hex(16)
        self.span_ids: list[str] = []

    def headers(self, request_id: str) -> dict[str, str]:
        span_id = secrets.token_hex(8)
        self.span_ids.append(span_id)
        return {"traceparent": f"00-{self.trace_id}-{span_id}-01", "X-Request-ID": request_id}


def _trace(recording: Recording, trace_id: str) -> list[ReceivedSpan]:
    return [span for span in recording.spans() if span.trace_id == trace_id]


def _complete(spans: list[ReceivedSpan], outside: Iterable[str] = ()) -> bool:
    """Every span's parent arrived too (or is one of the caller's ``outside`` spans)."""
    known = {span.span_id for span in spans} | set(outside)
    return all(span.parent_span_id is None or span.parent_span_id in known for span in spans)


def _one(spans: list[ReceivedSpan], service: str, kind: str, name: str | None = None, **attributes) -> ReceivedSpan:
    found = [
        span
        for span in spans
        if span.service == f"bazaar-{service}"
        and span.kind == kind
        and (name is None or span.name == name)
        and all(span.attributes.get(key) == value for key, value in attributes.items())
    ]
    assert len(found) == 1, (service, kind, name, attributes, _describe(spans))
    return found[0]


def _runs(spans: list[ReceivedSpan], service: str, task: str) -> list[ReceivedSpan]:
    """The runs of ``task`` in ``service``'s worker: at least one."""
    found = [s for s in spans if s.service == f"bazaar-{service}" and s.kind == "CONSUMER" and s.name == f"run/{task}"]
    assert found, (service, task, _describe(spans))
    return found


def _ancestors(span: ReceivedSpan, spans: list[ReceivedSpan]) -> list[ReceivedSpan]:
    by_id = {s.span_id: s for s in spans}
    chain = []
    while span.parent_span_id in by_id:
        span = by_id[span.parent_span_id]
        chain.append(span)
    return chain


def _describe(spans: list[ReceivedSpan]) -> list[tuple[str, str, str, str, str | None]]:
    return sorted((s.service, s.kind, s.name, s.span_id, s.parent_span_id) for s in spans)


def _wait_for_trace(recording: Recording, trace_id: str, what: str, ready, outside: Iterable[str] = ()):
    def settled():
        spans = _trace(recording, trace_id)
        return spans if spans and _complete(spans, outside) and ready(spans) else None

    try:
        return wait_for(settled, 20, what)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; spans so far: {_describe(_trace(recording, trace_id))}") from None


def _has(spans: list[ReceivedSpan], service: str, kind: str, name: str) -> bool:
    return any(s.service == f"bazaar-{service}" and s.kind == kind and s.name == name for s in spans)


def _in_stock_product(platform: E2EPlatform) -> dict:
    response = platform.api("GET", "/api/v1/catalog/products", params={"page_size": 50})
    assert response.status_code == 200, response.text
    return next(product for product in response.json()["results"] if product["available"] >= 2)


def _wait_status(platform: E2EPlatform, token: str, order_id: str, status: str) -> None:
    wait_for(
        lambda: platform.api("GET", f"/api/v1/orders/{order_id}", token).json()["status"] == status,
        30,
        f"order {order_id} to be {status}",
    )


def test_a_checkout_and_its_payment_are_one_trace_from_the_gateway_to_the_orders_worker(
    platform: E2EPlatform, customer, recording
):
    _, token = customer
    product = _in_stock_product(platform)
    caller = Caller()
    checkout_id, payment_id = f"e2e-trace-{uuid.uuid4().hex[:12]}", f"e2e-trace-{uuid.uuid4().hex[:12]}"

    # When: a checkout, the saga reserving the stock, and the payment, all in the caller's trace.
    created = platform.api("POST", "/api/v1/orders", token, headers=caller.headers(checkout_id),
                           json={"items": [{"product_id": product["id"], "quantity": 1}]})  # fmt: skip
    assert created.status_code == 202, created.text
    order_id = created.json()["id"]
    _wait_status(platform, token, order_id, "reserved")
    paid = platform.api("POST", f"/api/v1/orders/{order_id}/pay", token, headers=caller.headers(payment_id),
                        json={"card_token": "tok_success"})  # fmt: skip
    assert (paid.status_code, paid.json()["status"]) == (200, "paid"), paid.text

    # Then: the spans of every process arrive in that one trace, each under its cause.
    spans = _wait_for_trace(
        recording,
        caller.trace_id,
        "the checkout's and the payment's spans",
        lambda spans: (
            _has(spans, "orders", "CONSUMER", "run/orders.stock_reserved")
            and _has(spans, "orders", "CONSUMER", "run/orders.stock_committed")
        ),
        outside=caller.span_ids,
    )
    caused = [span for span in recording.spans() if span.attributes.get(REQUEST_ID) in (checkout_id, payment_id)]
    assert {span.trace_id for span in caused} == {caller.trace_id}
    # The gateway continues the caller's spans: they are the only parents from outside.
    edge = [span for span in spans if span.parent_span_id in caller.span_ids]
    assert [(s.service, s.kind, s.name) for s in edge] == [("bazaar-gateway", "SERVER", "POST /api/v1/orders")] * 2
    assert [s.attributes[REQUEST_ID] for s in edge] == [checkout_id, payment_id]
    checkout_edge, payment_edge = edge

    # gateway → orders: the gateway's attempt (a client span beside its Redis calls) is the parent
    # of the orders request.
    attempts = [s for s in spans if s.parent_span_id == checkout_edge.span_id and s.name == "POST orders"]
    assert [(s.service, s.kind, s.attributes["peer.service"]) for s in attempts] == [
        ("bazaar-gateway", "CLIENT", "orders")
    ]
    orders_checkout = _one(spans, "orders", "SERVER", **{REQUEST_ID: checkout_id})
    assert orders_checkout.parent_span_id == attempts[0].span_id
    assert orders_checkout.attributes[REQUEST_ID] == checkout_id
    # orders → catalog over HTTP (the price snapshot), each call a client span of orders.
    catalog_http = [s for s in spans if s.service == "bazaar-catalog" and s.kind == "SERVER"]
    assert catalog_http
    for served in catalog_http:
        call = next(s for s in spans if s.span_id == served.parent_span_id)
        assert (call.service, call.kind, call.name.split(" ")[1]) == ("bazaar-orders", "CLIENT", "catalog")
        assert orders_checkout in _ancestors(served, spans) or payment_edge in _ancestors(served, spans)
    # orders → profiles (the default address), the same way.
    address = _one(spans, "profiles", "SERVER", **{REQUEST_ID: checkout_id})
    assert _ancestors(address, spans)[:2] == [
        next(s for s in spans if s.span_id == address.parent_span_id and s.name == "GET profiles"),
        orders_checkout,
    ]
    # orders → outbox relay → catalog worker → reply → orders worker, in that order (a message
    # sent again because its acknowledgement was late runs again: a span more, in the same place).
    for reserve in _runs(spans, "catalog", "catalog.reserve_stock"):
        publish = next(s for s in spans if s.span_id == reserve.parent_span_id)
        assert (publish.service, publish.kind, publish.name) == (
            "bazaar-orders",
            "PRODUCER",
            "apply_async/catalog.reserve_stock",
        )
        assert orders_checkout in _ancestors(publish, spans)
        assert reserve.attributes[REQUEST_ID] == checkout_id
    for reserved in _runs(spans, "orders", "orders.stock_reserved"):
        assert [s.name for s in _ancestors(reserved, spans) if s.kind == "CONSUMER"] == ["run/catalog.reserve_stock"]
        assert orders_checkout in _ancestors(reserved, spans)
        assert reserved.attributes[REQUEST_ID] == checkout_id
    # The payment: its commit goes the same way, under the payment's request.
    for commit in _runs(spans, "catalog", "catalog.commit_reservation"):
        assert payment_edge in _ancestors(commit, spans)
    for committed in _runs(spans, "orders", "orders.stock_committed"):
        assert [s.name for s in _ancestors(committed, spans) if s.kind == "CONSUMER"] == [
            "run/catalog.commit_reservation"
        ]
        assert payment_edge in _ancestors(committed, spans)
    # Database queries (psycopg2) and Redis commands are spans of the same trace, in web and worker.
    if platform.platform.config.database_url:
        for parent in (orders_checkout, reserve, reserved, commit):
            queries = [s for s in spans if s.attributes.get("db.system.name") == "postgresql"
                       and parent in _ancestors(s, spans)]  # fmt: skip
            assert queries, f"no database span under {parent.name} in {parent.service}"
            assert all(s.kind == "CLIENT" and s.attributes.get("db.query.text") for s in queries)


def test_a_request_without_traceparent_starts_exactly_one_trace_which_its_messages_continue(
    platform: E2EPlatform, customer, recording
):
    _, token = customer
    product = _in_stock_product(platform)
    created = platform.api(
        "POST", "/api/v1/orders", token, json={"items": [{"product_id": product["id"], "quantity": 1}]}
    )
    assert created.status_code == 202, created.text
    order_id = created.json()["id"]
    _wait_status(platform, token, order_id, "reserved")
    request_id = f"e2e-trace-{uuid.uuid4().hex[:12]}"

    # When: a cancellation, sent without any trace context.
    cancelled = platform.api("POST", f"/api/v1/orders/{order_id}/cancel", token, json={},
                             headers={"X-Request-ID": request_id})  # fmt: skip
    assert cancelled.status_code == 200, cancelled.text

    # Then: the gateway starts one trace, and every span the request caused is in it.
    def root_arrived():
        roots = [
            s for s in recording.spans() if s.attributes.get(REQUEST_ID) == request_id and s.service == "bazaar-gateway"
        ]
        return roots[0] if roots else None

    root = wait_for(root_arrived, 10, "the gateway's span of the cancellation")
    spans = _wait_for_trace(
        recording,
        root.trace_id,
        "the cancellation's spans",
        lambda spans: _has(spans, "orders", "CONSUMER", "run/orders.stock_released"),
    )
    assert root.parent_span_id is None
    assert [s for s in spans if s.parent_span_id is None] == [root]
    caused = [s for s in recording.spans() if s.attributes.get(REQUEST_ID) == request_id]
    assert {s.trace_id for s in caused} == {root.trace_id}
    assert {(s.service, s.kind) for s in caused} >= {
        ("bazaar-gateway", "SERVER"), ("bazaar-orders", "SERVER"),
        ("bazaar-catalog", "CONSUMER"), ("bazaar-orders", "CONSUMER"),
    }  # fmt: skip
    orders_cancel = _one(spans, "orders", "SERVER", **{REQUEST_ID: request_id})
    for release in _runs(spans, "catalog", "catalog.release_reservation"):
        assert orders_cancel in _ancestors(release, spans)
    for released in _runs(spans, "orders", "orders.stock_released"):
        chain = _ancestors(released, spans)
        assert [s.name for s in chain if s.kind == "CONSUMER"] == ["run/catalog.release_reservation"]
        assert (orders_cancel in chain, chain[-1]) == (True, root)


def test_an_erasure_is_one_trace_through_profiles_to_the_auth_and_orders_workers(platform: E2EPlatform, recording):
    email, password = f"trace-{uuid.uuid4().hex[:10]}@example.com", f"Pw-{uuid.uuid4().hex}"
    registered = platform.api("POST", "/api/v1/auth/register", json={"email": email, "password": password})
    assert registered.status_code == 201, registered.text
    token = platform.token(email, password)
    wait_for(lambda: platform.api("GET", "/api/v1/profiles/me", token).status_code == 200, 20, "the profile")
    caller = Caller()
    request_id = f"e2e-trace-{uuid.uuid4().hex[:12]}"

    erased = platform.api("DELETE", "/api/v1/profiles/me", token, json={"password": password},
                          headers=caller.headers(request_id))  # fmt: skip
    assert erased.status_code == 204, erased.text

    spans = _wait_for_trace(
        recording,
        caller.trace_id,
        "the erasure's spans",
        lambda spans: (
            _has(spans, "auth", "CONSUMER", "run/auth.user_erased")
            and _has(spans, "orders", "CONSUMER", "run/orders.user_erased")
        ),
        outside=caller.span_ids,
    )
    profiles = _one(spans, "profiles", "SERVER", **{REQUEST_ID: request_id})
    for consumer in ("auth", "orders"):
        for run in _runs(spans, consumer, f"{consumer}.user_erased"):
            assert profiles in _ancestors(run, spans)
            assert run.attributes[REQUEST_ID] == request_id


class SentryIngest:
    """A stand-in for Sentry's ingest endpoint: the events (envelope items) that reach it."""

    def __init__(self) -> None:
        self.events: list[dict] = []
        ingest = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                encoding = self.headers.get("Content-Encoding")
                if encoding == "gzip":
                    body = gzip.decompress(body)
                elif encoding == "br":
                    import brotli

                    body = brotli.decompress(body)
                lines = body.split(b"\n")
                for header, payload in zip(lines[1::2], lines[2::2], strict=False):
                    if json.loads(header).get("type") == "event":
                        ingest.events.append(json.loads(payload))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.dsn = f"http://public@127.0.0.1:{self._server.server_address[1]}/1"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def test_a_worker_reports_errors_to_sentry_and_traces_its_tasks(platform: E2EPlatform, recording):
    # Given: a profiles worker with a Sentry DSN, the only one taking messages (the session's is
    # frozen, for longer than a pending BRPOP of it could still take one).
    ingest = SentryIngest()
    session_worker = platform.workers("profiles")[0]
    route = contracts.UserRegistered.ROUTES[0]
    message_id = str(uuid.uuid4())
    worker = platform.start_worker("profiles", SENTRY_DSN=ingest.dsn)
    try:
        with frozen(session_worker.popen.pid, 0):
            time.sleep(1.5)
            # When: a message that is not a UserRegistered reaches it.
            Celery(broker=platform.broker.url).send_task(
                route.task, kwargs={"message_id": message_id, "payload": {"user_id": "not-a-user"}}, queue=route.queue
            )

            # Then: the dead-lettering is an error event in Sentry, from the service's worker.
            def dead_lettered() -> dict | None:
                return next(
                    (e for e in ingest.events if e.get("logentry", {}).get("message") == "message dead-lettered"), None
                )

            event = wait_for(dead_lettered, 60, "the worker's error event in Sentry")
    finally:
        platform.stop_instance(worker)
        ingest.close()
    assert (event["server_name"], event["level"]) == ("profiles", "error")
    assert event["extra"]["message_id"] == message_id
    # And the task is traced: a message without trace context (the test's sender has none) starts one.
    run = wait_for(
        lambda: next((s for s in recording.spans() if s.name == f"run/{route.task}" and s.kind == "CONSUMER"), None),
        10,
        "the worker's task span",
    )
    assert (run.service, run.parent_span_id) == ("bazaar-profiles", None)
