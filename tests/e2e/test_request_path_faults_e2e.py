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
from bazaar_devtools.e2e import wait_for
from bazaar_devtools.faults import frozen
from bazaar_devtools.platform import ORDERS as ORDERS_SPEC

ORDERS = "/api/v1/orders"


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
def test_workers_survive_the_broker_down_for_15_s_and_process_afterwards(platform):
    # Invariant: the workers are the same processes after the outage, and a checkout made after
    # it is reserved (they reconnected and consume again).
    platform.ensure_one_instance_each()
    workers = platform.workers("catalog") + platform.workers("orders")
    product_id = _product(platform, stock=10)
    _, token = platform.register_customer()
    platform.broker.stop()
    try:
        time.sleep(15)
    finally:
        platform.broker.start()
    # The relay of each worker publishes what waited in the outbox; the consumers reconnect.
    response = _checkout(platform, token, product_id)
    assert response.status_code == 202, response.text
    order_id = response.json()["id"]

    wait_for(
        lambda: platform.api("GET", f"{ORDERS}/{order_id}", token).json()["status"] == "reserved",
        30,
        "the order made after the outage to be reserved",
        interval=0.5,
    )
    assert all(worker.alive for worker in workers), [worker.name for worker in workers if not worker.alive]


@pytest.mark.consistency
def test_a_sigkilled_workers_messages_are_redelivered_within_seconds(platform):
    # Invariant: a reservation a killed catalog worker had taken but not finished is done by the
    # next worker: on RabbitMQ at once (the connection dropped), on Redis after the visibility
    # timeout (20 s in this suite, 60 s by default) and the restore sweep.
    platform.ensure_one_instance_each()
    product_id = _product(platform, stock=10)
    _, token = platform.register_customer()
    for worker in platform.workers("catalog"):
        platform.stop_instance(worker, signal.SIGTERM)
    try:
        doomed = platform.platform.start_worker("catalog", beat=True, pool="prefork")  # children to freeze
        since = doomed.log_path.stat().st_size  # the log file is shared with earlier workers
        wait_for(lambda: _logged(doomed, "Connected to", since), 30, "the new worker to connect to the broker")
        # Its pool processes freeze: the main process takes the message, no task ever finishes it.
        for child in psutil.Process(doomed.popen.pid).children():
            child.send_signal(signal.SIGSTOP)
        response = _checkout(platform, token, product_id)
        assert response.status_code == 202, response.text
        order_id = response.json()["id"]
        wait_for(lambda: _logged(doomed, "catalog.reserve_stock[", since), 30, "the doomed worker to take the message")
        platform.kill_instance(doomed)  # SIGKILL to the whole group: nothing is acknowledged
        killed_at = time.monotonic()
        platform.platform.start_worker("catalog", beat=True)
        wait_for(
            lambda: platform.api("GET", f"{ORDERS}/{order_id}", token).json()["status"] == "reserved",
            45,
            "the order to be reserved by the next worker",
            interval=0.5,
        )
        redelivered_after = time.monotonic() - killed_at
    finally:
        for leftover in platform.workers("catalog"):
            platform.stop_instance(leftover, signal.SIGTERM)
        platform.ensure_one_instance_each()
    print(f"[{platform.broker.kind}] redelivered {redelivered_after:.1f}s after the kill")
    if platform.platform.config.database_url:
        assert _orders_in_db(platform, [order_id]) == {order_id: "reserved"}


def _logged(worker, text: str, since: int) -> bool:
    """``text`` in what ``worker`` logged (its log file from byte ``since`` on)."""
    with worker.log_path.open("rb") as log:
        log.seek(since)
        return text.encode() in log.read()
