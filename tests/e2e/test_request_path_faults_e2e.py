"""Issue 10 (request path): faults of the registry, one instance, the orders database or the broker
cost no request that did not need the failed part, through the real gateway and real services.

Each test states its invariant; those about orders check it in the orders database afterwards.
"""

from __future__ import annotations

import json
import signal
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psutil
import psycopg2
import pytest
import redis
import requests
from test_gateway_resilience_e2e import PRODUCTS, SteadyGets, catalog_pair  # noqa: F401 - fixture

from bazaar_common.demo import DEMO_MERCHANT
from bazaar_common.discovery import Instance
from bazaar_devtools.consistency import ShopperLoad, query, wait_until_consistent
from bazaar_devtools.e2e import wait_for
from bazaar_devtools.faults import REFUSE, FaultProxy, frozen
from bazaar_devtools.platform import ORDERS as ORDERS_SPEC

ORDERS = "/api/v1/orders"
# After a fault is healed, the saga settles within this (e2e re-drive: 2 s, 4 s, 8 s, then every
# 10 s; reconciliation every 5 s of orders idle 10 s).
SETTLE_SECONDS = 60


# --- helpers ------------------------------------------------------------------------------------
def _product(platform, *, stock: int) -> int:
    token = platform.token(DEMO_MERCHANT.email)
    response = platform.api(
        "POST",
        "/api/v1/catalog/merchant/products",
        token,
        json={"name": f"Fault item {uuid.uuid4().hex[:6]}", "sku": f"F-{uuid.uuid4().hex[:10]}",
              "price": "3.00", "initial_stock": stock},
    )  # fmt: skip
    assert response.status_code == 201, response.text
    return response.json()["id"]


def _checkout(platform, token: str, product_id: int) -> requests.Response:
    return platform.api(
        "POST",
        ORDERS,
        token,
        json={"items": [{"product_id": product_id, "quantity": 1}]},
        headers={"Idempotency-Key": uuid.uuid4().hex},
    )


def _orders_db(platform):
    return psycopg2.connect(platform.platform.database_url(ORDERS_SPEC))


def _orders_in_db(platform, order_ids: list[str]) -> dict[str, str]:
    with _orders_db(platform) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT id::text, status FROM orders_order WHERE id::text = ANY(%s)", [order_ids])
        return dict(cursor.fetchall())


def _requires_postgres(platform) -> None:
    assert platform.platform.config.database_url, "this test is marked postgres: run it with DATABASE_URL"


class _SlowInstance:
    """A catalog "instance" that answers its readiness check at once and every API call after
    ``delay`` seconds (a slow upstream), registered in the real registry by its own heartbeat."""

    def __init__(self, platform, delay: float) -> None:
        answer = json.dumps({"count": 0, "next": None, "previous": None, "results": []}).encode()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                if not self.path.startswith(("/readyz", "/healthz")):
                    time.sleep(delay)
                body = b'{"status": "ready"}' if self.path.startswith("/readyz") else answer
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        port = self.server.server_address[1]
        self.instance = Instance("catalog", f"catalog-slow-{port}", f"http://127.0.0.1:{port}", version="slow")
        self.registry = platform.registry
        self._stop = threading.Event()
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        threading.Thread(target=self._beat, daemon=True).start()

    def _beat(self) -> None:
        while not self._stop.is_set():
            self.registry.register(self.instance)
            self._stop.wait(1.0)

    def close(self) -> None:
        self._stop.set()
        self.registry.deregister("catalog", self.instance.instance_id)
        self.server.shutdown()
        self.server.server_close()


# --- discovery ----------------------------------------------------------------------------------
def test_registry_emptied_under_a_get_stream_fails_no_get(platform):
    # Invariant: Redis losing every registry entry (a restart without data) costs no GET.
    platform.ensure_one_instance_each()
    client = redis.Redis.from_url(platform.redis_url)
    with SteadyGets(platform.gateway_url) as stream:
        time.sleep(1.0)
        client.flushdb()  # what a Redis restarted empty looks like to every reader and writer
        time.sleep(4.0)

    assert stream.failures == []
    assert len(stream.statuses) > 20  # the stream really ran through the outage
    # and every instance is back in the registry by itself, at once
    wait_for(lambda: platform.registry.lookup("catalog"), 3, "catalog to re-register")


# --- one bad instance among good ones -----------------------------------------------------------
def test_one_slow_catalog_instance_among_healthy_ones_causes_no_503(platform, catalog_pair):  # noqa: F811
    # Invariant: a slow instance costs latency on the reads that meet it, never an answer; the
    # service's breaker stays closed because the healthy instances answer.
    slow = _SlowInstance(platform, delay=5.0)
    try:
        wait_for(lambda: len(platform.registry.lookup("catalog")) == 3, 10, "the slow instance registered")
        session = requests.Session()
        session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=8))

        def get(_: int) -> int:
            return session.get(platform.gateway_url + PRODUCTS, timeout=10).status_code

        with ThreadPoolExecutor(max_workers=6) as pool:
            codes = list(pool.map(get, range(240)))
    finally:
        slow.close()

    assert {code: codes.count(code) for code in set(codes)} == {200: 240}


def test_a_sigstopped_instance_costs_no_idempotent_get(platform, catalog_pair):  # noqa: F811
    # Invariant: an instance frozen for 10 s (SIGSTOP: sockets open, nothing answers) costs no GET.
    victim = catalog_pair[1]
    with SteadyGets(platform.gateway_url) as stream:
        time.sleep(0.5)
        with frozen(victim.popen.pid, 10.0):
            pass  # frozen for the whole 10 s while the stream goes on
    with SteadyGets(platform.gateway_url) as after:
        time.sleep(2.0)  # back from the freeze: it re-registers and serves again

    assert stream.failures == []
    assert len(stream.statuses) > 30
    assert after.failures == []


# --- the orders database ------------------------------------------------------------------------
@pytest.mark.postgres
def test_orders_database_connections_terminated_under_load_give_503s_never_500s(platform):
    # Invariant: a checkout is accepted (202) only if its order is in the database, exactly once;
    # every refused one is a 503 problem with Retry-After; nothing answers 500.
    _requires_postgres(platform)
    platform.ensure_one_instance_each()
    product_id = _product(platform, stock=1000)
    _, token = platform.register_customer()
    database = platform.platform.database_url(ORDERS_SPEC).rsplit("/", 1)[1]
    stop = threading.Event()

    def terminate_connections() -> None:
        admin = psycopg2.connect(platform.platform.database_url(ORDERS_SPEC))
        admin.autocommit = True
        with admin.cursor() as cursor:
            while not stop.wait(0.3):
                cursor.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = %s AND pid <> pg_backend_pid()",
                    [database],
                )
        admin.close()

    answers: list[requests.Response] = []

    def shop(_: int) -> None:
        session = requests.Session()
        for _ in range(12):
            response = _checkout(platform, token, product_id)
            answers.append(response)
            if response.status_code == 202:
                answers.append(
                    session.get(f"{platform.gateway_url}{ORDERS}/{response.json()['id']}",
                                headers={"Authorization": f"Bearer {token}"}, timeout=30)
                )  # fmt: skip
            answers.append(session.get(f"{platform.gateway_url}{ORDERS}", headers={"Authorization": f"Bearer {token}"}))

    killer = threading.Thread(target=terminate_connections)
    killer.start()
    try:
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(shop, range(4)))
    finally:
        stop.set()
        killer.join()

    codes = [response.status_code for response in answers]
    assert 500 not in codes, [r.text for r in answers if r.status_code == 500][:3]
    assert set(codes) <= {200, 202, 503}, sorted(set(codes))
    refused = [response for response in answers if response.status_code == 503]
    assert all(int(response.headers["Retry-After"]) >= 1 for response in refused)
    assert all(response.headers["Content-Type"] == "application/problem+json" for response in refused)
    accepted = [response.json()["id"] for response in answers if response.status_code == 202]
    assert accepted, "no checkout got through at all"
    assert sorted(_orders_in_db(platform, accepted)) == sorted(accepted)
    assert len(set(accepted)) == len(accepted)


def _shop_directly(url: str, token: str, product_id: int, rounds: int, answers: list) -> None:
    """Checkouts, each followed by a read of the order and of the list, straight to ``url``."""
    session = requests.Session()
    headers = {"Authorization": f"Bearer {token}"}
    for _ in range(rounds):
        placed = session.post(f"{url}{ORDERS}", json={"items": [{"product_id": product_id, "quantity": 1}]},
                              headers={**headers, "Idempotency-Key": uuid.uuid4().hex}, timeout=30)  # fmt: skip
        answers.append(placed)
        if placed.status_code == 202:
            answers.append(session.get(f"{url}{ORDERS}/{placed.json()['id']}", headers=headers, timeout=30))
        answers.append(session.get(f"{url}{ORDERS}", headers=headers, timeout=30))
        time.sleep(0.1)


def _assert_clean_refusals(answers: list[requests.Response]) -> None:
    codes = [response.status_code for response in answers]
    assert 500 not in codes, [r.text for r in answers if r.status_code == 500][:3]
    assert set(codes) <= {200, 202, 503}, sorted(set(codes))
    for refused in (response for response in answers if response.status_code == 503):
        assert refused.headers["Content-Type"] == "application/problem+json", refused.text
        assert int(refused.headers["Retry-After"]) >= 1


@pytest.mark.postgres
def test_the_orders_web_instances_database_refusing_connections_answers_503s_never_500s(platform):
    # Invariant: while an orders web instance's PostgreSQL refuses (and drops) its connections
    # for 4 s under checkout load, every answer is 200/202 or a 503 problem with Retry-After,
    # never 500; every accepted checkout is in the database once and settles; the instance
    # serves again right after (connections are health-checked, not reused dead).
    _requires_postgres(platform)
    platform.ensure_one_instance_each()
    product_id = _product(platform, stock=500)
    _, token = platform.register_customer()
    proxy = FaultProxy.for_url(platform.database_url("orders"))
    instance = platform.start_instance("orders", DATABASE_URL=proxy.url_for(platform.database_url("orders")))
    answers: list[requests.Response] = []
    try:
        shoppers = [
            threading.Thread(target=_shop_directly, args=(instance.url, token, product_id, 25, answers))
            for _ in range(3)
        ]
        for shopper in shoppers:
            shopper.start()
        time.sleep(1.5)
        with proxy.fault(REFUSE, 4):
            pass
        for shopper in shoppers:
            shopper.join()
        after: list[requests.Response] = []
        _shop_directly(instance.url, token, product_id, 2, after)
    finally:
        platform.stop_instance(instance, signal.SIGTERM)
        proxy.close()

    _assert_clean_refusals(answers)
    assert [r.status_code for r in answers].count(503) > 0, "the fault never reached a request"
    assert after
    assert {r.status_code for r in after} <= {200, 202}
    accepted = [r.json()["id"] for r in [*answers, *after] if r.status_code == 202]
    assert accepted
    assert len(set(accepted)) == len(accepted)
    assert sorted(_orders_in_db(platform, accepted)) == sorted(accepted)
    problems = wait_until_consistent(
        orders_db=platform.database_url("orders"),
        catalog_db=platform.database_url("catalog"),
        order_ids=accepted,
        product_ids=[product_id],
        timeout=SETTLE_SECONDS,
    )
    assert problems == []


# --- Redis ----------------------------------------------------------------------------------------
def test_redis_down_under_checkout_load_costs_no_order_read_and_no_500(platform):
    # Invariant: with Redis (registry, caches, limits, revocation) down for 8 s and back empty,
    # under checkouts through the gateway: service tokens stay cached or are issued (checkouts
    # go on: accepted, or a clean 503 problem with Retry-After), every order read answers 200
    # (the 503s of checkouts open no breaker for reads), nothing answers 500, and every accepted
    # order settles (none pending) once Redis is back.
    platform.ensure_one_instance_each()
    product_id = _product(platform, stock=500)
    _, token = platform.register_customer()
    assert _checkout(platform, token, product_id).status_code == 202  # warm: tokens issued and cached
    during: list[requests.Response] = []
    stop = threading.Event()

    def shop() -> None:
        while not stop.is_set():
            placed = _checkout(platform, token, product_id)
            during.append(placed)
            if placed.status_code == 202:
                during.append(platform.api("GET", f"{ORDERS}/{placed.json()['id']}", token))
            during.append(platform.api("GET", ORDERS, token))
            time.sleep(0.1)

    shoppers = [threading.Thread(target=shop) for _ in range(3)]
    with platform.redis_down():
        for shopper in shoppers:
            shopper.start()
        time.sleep(8)
    time.sleep(3)  # back, empty: instances re-register while reads go on
    stop.set()
    for shopper in shoppers:
        shopper.join()

    _assert_clean_refusals(during)
    reads = [r for r in during if r.request.method == "GET"]
    assert reads
    assert {r.status_code for r in reads} == {200}, sorted({r.status_code for r in reads})
    accepted = [r.json()["id"] for r in during if r.request.method == "POST" and r.status_code == 202]
    assert accepted, "no checkout was accepted while Redis was away"
    problems = wait_until_consistent(
        orders_db=platform.database_url("orders"),
        catalog_db=platform.database_url("catalog"),
        order_ids=accepted,
        product_ids=[product_id],
        timeout=SETTLE_SECONDS,
    )
    assert problems == []


# --- the broker ---------------------------------------------------------------------------------
def test_broker_down_checkouts_are_accepted_promptly_and_order_reads_are_unaffected(platform):
    # Invariant: no request waits for the broker; the accepted orders are in the database at once
    # and leave "pending" once the broker is back (the relay publishes what the requests could not).
    platform.ensure_one_instance_each()
    product_id = _product(platform, stock=100)
    _, token = platform.register_customer()
    platform.broker.stop()
    try:
        timings, accepted, reads = [], [], []
        for _ in range(10):
            started = time.monotonic()
            response = _checkout(platform, token, product_id)
            timings.append(time.monotonic() - started)
            assert response.status_code == 202, response.text
            accepted.append(response.json()["id"])
            reads.append(platform.api("GET", f"{ORDERS}/{accepted[-1]}", token).status_code)
        in_db_while_down = _orders_in_db(platform, accepted) if platform.platform.config.database_url else None
    finally:
        platform.broker.start()

    # A publish attempt against a dead broker takes its connect timeout (2 s); no request did.
    assert max(timings) < 2.0, timings
    assert reads == [200] * 10
    if in_db_while_down is not None:
        assert in_db_while_down == dict.fromkeys(accepted, "pending")

    def settled() -> bool:
        found = [platform.api("GET", f"{ORDERS}/{order_id}", token).json()["status"] for order_id in accepted]
        return "pending" not in found

    wait_for(settled, 60, "the orders to leave pending once the broker is back", interval=1)


@pytest.mark.consistency
def test_broker_down_15_s_under_checkouts_and_payments_loses_nothing_and_workers_survive(platform):
    # Invariants, with checkouts and payments going on before, during and after a 15 s outage:
    # every accepted order is final or expectedly waiting (none pending) within SETTLE_SECONDS of
    # the broker's return, no paid order without committed stock (checked per order, from the
    # databases), stock equal to its ledger, nothing twice; zero 500s, zero failed reads; the
    # workers are the same processes afterwards, and an order placed after the outage is reserved.
    platform.ensure_one_instance_each()
    workers = platform.workers("catalog") + platform.workers("orders")
    product_id = _product(platform, stock=500)
    tokens = [platform.register_customer()[1] for _ in range(2)]
    load = ShopperLoad(api=platform.api, tokens=tokens, product_id=product_id, threads=4).start()
    try:
        time.sleep(3)
        platform.broker.stop()
        try:
            time.sleep(15)
        finally:
            platform.broker.start()
        time.sleep(3)
    finally:
        load.stop()
    # The relay of each worker publishes what waited in the outbox; the consumers reconnect.
    response = _checkout(platform, tokens[0], product_id)
    assert response.status_code == 202, response.text
    order_id = response.json()["id"]
    wait_for(
        lambda: platform.api("GET", f"{ORDERS}/{order_id}", tokens[0]).json()["status"] == "reserved",
        SETTLE_SECONDS,
        "the order made after the outage to be reserved (behind the outage's backlog)",
        interval=0.5,
    )
    assert all(worker.alive for worker in workers), [worker.name for worker in workers if not worker.alive]
    assert load.server_errors == 0, dict(load.answers)
    assert load.failed_reads == []
    paid = load.answers[("POST", 200)]
    assert paid, dict(load.answers)  # payments happened, not only checkouts
    problems = wait_until_consistent(
        orders_db=platform.database_url("orders"),
        catalog_db=platform.database_url("catalog"),
        order_ids=[*load.order_ids, order_id],
        product_ids=[product_id],
        timeout=SETTLE_SECONDS,
    )
    assert problems == []


@pytest.mark.consistency
def test_a_sigkilled_workers_messages_are_redelivered_within_seconds(platform):
    # Invariant: a reservation a killed catalog worker had taken but not finished is done by the
    # next worker from the broker's own redelivery: on RabbitMQ at once (the connection dropped),
    # on Redis after the visibility timeout (34 s in this suite, 60 s by default) and the restore
    # sweep. The orders workers are stopped meanwhile, so the saga's re-drive (which would send
    # the request again after 2 s) cannot be what delivers it: the request was sent exactly once.
    platform.ensure_one_instance_each()
    product_id = _product(platform, stock=10)
    _, token = platform.register_customer()
    for worker in platform.workers("catalog") + platform.workers("orders"):
        platform.stop_instance(worker, signal.SIGTERM)
    # Nothing left queued by earlier tests (acknowledgements for the catalog, say): the doomed
    # worker's prefetch slots must go to this order's request, not to a leftover it then freezes on.
    platform.broker.purge()
    try:
        # Prefork (children to freeze), and no beat: a periodic task must not take its one slot.
        doomed = platform.platform.start_worker("catalog", pool="prefork")
        since = doomed.log_path.stat().st_size  # the log file is shared with earlier workers
        wait_for(lambda: _logged(doomed, "Connected to", since), 90, "the new worker to connect to the broker")
        # Its pool processes freeze: the main process takes the message, no task ever finishes it.
        for child in psutil.Process(doomed.popen.pid).children():
            child.send_signal(signal.SIGSTOP)
        response = _checkout(platform, token, product_id)  # published by the web instance at commit
        assert response.status_code == 202, response.text
        order_id = response.json()["id"]
        wait_for(lambda: _logged(doomed, "catalog.reserve_stock[", since), 30, "the doomed worker to take the message")
        platform.kill_instance(doomed)  # SIGKILL to the whole group: nothing is acknowledged
        killed_at = time.monotonic()
        platform.platform.start_worker("catalog", beat=True)
        wait_for(lambda: _reservation_status(platform, order_id) == "held", 75, "the next worker to reserve it",
                 interval=0.5)  # fmt: skip
        redelivered_after = time.monotonic() - killed_at
        sends = _reserve_sends(platform, order_id)
    finally:
        for leftover in platform.workers("catalog"):
            platform.stop_instance(leftover, signal.SIGTERM)
        platform.ensure_one_instance_each()
    print(f"[{platform.broker.kind}] redelivered {redelivered_after:.1f}s after the kill")
    assert sends == 1  # one publish by the web instance, no re-drive: the broker redelivered it
    wait_for(
        lambda: platform.api("GET", f"{ORDERS}/{order_id}", token).json()["status"] == "reserved",
        90,  # the orders worker's start (tens of seconds on a loaded machine), then the reply
        "the order to be reserved once the orders worker is back",
        interval=0.5,
    )


def _reservation_status(platform, order_id: str) -> str | None:
    rows = query(platform.database_url("catalog"), "SELECT status FROM inventory_reservation WHERE order_id = %s",
                 (order_id,))  # fmt: skip
    return rows[0][0] if rows else None


def _reserve_sends(platform, order_id: str) -> int:
    """How many times the order service sent this order's reserve request (its outbox row's attempts)."""
    sql = "SELECT payload, attempts FROM outbox_outboxmessage WHERE task_name = 'catalog.reserve_stock'"
    rows = query(platform.database_url("orders"), sql)
    payloads = [(json.loads(payload) if isinstance(payload, str) else payload, attempts) for payload, attempts in rows]
    found = [attempts for payload, attempts in payloads if payload["order_id"] == order_id]
    assert len(found) == 1, found
    return found[0]


def _logged(worker, text: str, since: int) -> bool:
    """``text`` in what ``worker`` logged (its log file from byte ``since`` on)."""
    with worker.log_path.open("rb") as log:
        log.seek(since)
        return text.encode() in log.read()
