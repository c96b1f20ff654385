"""Orders and stock stay consistent through concurrency and failures (the real platform).

Everything goes through the gateway, the real services and their Celery workers. "Settled" means
no order of the test is still ``pending``; then stock (as the merchant sees it in the catalog) and
orders must agree exactly.
"""

from __future__ import annotations

import signal
import time
import uuid
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import psutil
import pytest
import requests
import requests.adapters
from celery import Celery

from bazaar_common.demo import DEMO_ACCOUNTS, DEMO_ADMIN, DEMO_CUSTOMER, DEMO_MERCHANT, DEMO_PASSWORD

ORDERS = "/api/v1/orders"
SETTLE_SECONDS = 120


def _with_rate_limit_retry(send: Any, attempts: int = 6) -> requests.Response:
    """The gateway's rate limits are shared by every e2e test: wait out a 429 instead of failing."""
    for _ in range(attempts):
        response = send()
        if response.status_code != 429:
            return response
        time.sleep(min(float(response.headers.get("Retry-After", "5")), 30))
    return response


@dataclass(frozen=True)
class Shopper:
    email: str
    token: str


@pytest.fixture(scope="module")
def tokens(platform) -> dict[str, str]:
    """Access tokens of the demo accounts (each has the customer role), fetched once per module."""
    # Enough pooled connections for the concurrent tests' threads.
    platform.http.mount("http://", requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=64))

    def login(email: str) -> str:
        response = _with_rate_limit_retry(
            lambda: platform.api("POST", "/api/v1/auth/token", json={"email": email, "password": DEMO_PASSWORD})
        )
        assert response.status_code == 200, response.text
        return response.json()["access"]

    return {account.email: login(account.email) for account in DEMO_ACCOUNTS}


@pytest.fixture(scope="module")
def shoppers(tokens) -> list[Shopper]:
    return [Shopper(email, token) for email, token in tokens.items()]


def create_product(platform, tokens, *, stock: int, price: str = "5.00") -> int:
    response = platform.api(
        "POST",
        "/api/v1/catalog/merchant/products",
        tokens[DEMO_MERCHANT.email],
        json={
            "name": f"E2E item {uuid.uuid4().hex[:6]}",
            "sku": f"E2E-{uuid.uuid4().hex[:10]}",
            "price": price,
            "initial_stock": stock,
        },
    )
    assert response.status_code == 201, response.text
    return response.json()["id"]


def _read(platform, path: str, token: str, attempts: int = 20) -> requests.Response:
    """A polling read: rides out 429s and a moment without a registered instance (a loaded
    machine can miss a heartbeat); what the tests assert is the final state, not these reads."""
    for _ in range(attempts):
        response = _with_rate_limit_retry(lambda: platform.api("GET", path, token))
        if response.status_code not in (502, 503, 504):
            return response
        time.sleep(0.5)
    return response


def stock_of(platform, tokens, product_id: int) -> dict[str, int]:
    response = _read(platform, f"/api/v1/catalog/merchant/products/{product_id}", tokens[DEMO_MERCHANT.email])
    assert response.status_code == 200, response.text
    return response.json()["stock"]


def checkout(platform, token: str, lines: list[tuple[int, int]], **headers: str) -> requests.Response:
    body = {"items": [{"product_id": pid, "quantity": qty} for pid, qty in lines]}
    return _with_rate_limit_retry(lambda: platform.api("POST", ORDERS, token, json=body, headers=dict(headers)))


def statuses(platform, tokens, order_ids: Iterable[str]) -> dict[str, str]:
    """Current status of each order, read by an admin through the gateway."""
    wanted = set(order_ids)
    found: dict[str, str] = {}
    page = 1
    while len(found) < len(wanted):
        response = _read(platform, f"{ORDERS}?page_size=100&page={page}", tokens[DEMO_ADMIN.email])
        assert response.status_code == 200, response.text
        data = response.json()
        found.update({o["id"]: o["status"] for o in data["results"] if o["id"] in wanted})
        if not data.get("next"):
            break
        page += 1
    return found


def settle(platform, tokens, order_ids: list[str], timeout: float = SETTLE_SECONDS) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while True:
        current = statuses(platform, tokens, order_ids)
        if len(current) == len(order_ids) and "pending" not in current.values():
            return current
        if time.monotonic() > deadline:
            raise AssertionError(f"orders still pending after {timeout}s: {sorted(current.values())}")
        time.sleep(0.5)


def count(values: Iterable[str], status: str) -> int:
    return sum(1 for value in values if value == status)


def test_no_oversell_with_50_concurrent_checkouts_through_the_gateway(platform, tokens, shoppers):
    product_id = create_product(platform, tokens, stock=10)
    owners = [shoppers[index % len(shoppers)] for index in range(50)]

    with ThreadPoolExecutor(max_workers=25) as pool:
        responses = list(pool.map(lambda s: checkout(platform, s.token, [(product_id, 1)]), owners))

    assert [r.status_code for r in responses] == [202] * 50, {r.status_code: r.text for r in responses}
    order_owner = {r.json()["id"]: owner for r, owner in zip(responses, owners, strict=True)}
    final = settle(platform, tokens, list(order_owner))
    assert (count(final.values(), "reserved"), count(final.values(), "rejected")) == (10, 40)
    assert stock_of(platform, tokens, product_id) == {"on_hand": 10, "reserved": 10, "available": 0}

    # Pay half of the held orders and cancel the rest: stock follows exactly.
    reserved = [order_id for order_id, status in final.items() if status == "reserved"]
    for order_id in reserved[:5]:
        paid = platform.api("POST", f"{ORDERS}/{order_id}/pay", order_owner[order_id].token,
                            json={"card_token": "tok_success"})  # fmt: skip
        assert (paid.status_code, paid.json()["status"]) == (200, "paid"), paid.text
    for order_id in reserved[5:]:
        cancelled = platform.api("POST", f"{ORDERS}/{order_id}/cancel", order_owner[order_id].token, json={})
        assert cancelled.status_code == 200, cancelled.text

    wait_for_stock(platform, tokens, product_id, {"on_hand": 5, "reserved": 0, "available": 5})


def wait_for_stock(platform, tokens, product_id: int, expected: dict[str, int], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while (current := stock_of(platform, tokens, product_id)) != expected:
        if time.monotonic() > deadline:
            raise AssertionError(f"stock is {current}, expected {expected}")
        time.sleep(0.5)


def test_opposite_line_orders_placed_concurrently_do_not_deadlock(platform, tokens, shoppers):
    first = create_product(platform, tokens, stock=1000)
    second = create_product(platform, tokens, stock=1000)
    requests_to_send = [
        (
            shoppers[index % len(shoppers)],
            [(first, 1), (second, 2)] if index % 2 else [(second, 2), (first, 1)],
        )
        for index in range(30)
    ]

    with ThreadPoolExecutor(max_workers=10) as pool:
        responses = list(pool.map(lambda job: checkout(platform, job[0].token, job[1]), requests_to_send))

    assert [r.status_code for r in responses] == [202] * 30
    final = settle(platform, tokens, [r.json()["id"] for r in responses])
    assert count(final.values(), "reserved") == 30
    assert stock_of(platform, tokens, first) == {"on_hand": 1000, "reserved": 30, "available": 970}
    assert stock_of(platform, tokens, second) == {"on_hand": 1000, "reserved": 60, "available": 940}


def test_checkout_while_the_broker_is_down_completes_once_it_is_back(platform, tokens, shoppers):
    product_id = create_product(platform, tokens, stock=5)
    platform.broker.stop()
    try:
        response = checkout(platform, shoppers[0].token, [(product_id, 2)])
        assert response.status_code == 202, response.text
        assert response.json()["status"] == "pending"
        time.sleep(2)
        assert statuses(platform, tokens, [response.json()["id"]]) == {response.json()["id"]: "pending"}
    finally:
        platform.broker.start()

    final = settle(platform, tokens, [response.json()["id"]])
    assert list(final.values()) == ["reserved"]
    assert stock_of(platform, tokens, product_id) == {"on_hand": 5, "reserved": 2, "available": 3}


def _kill_pool_children(worker_pid: int) -> int:
    """SIGKILL the worker's pool processes (a task dies mid-way); the main process stays up."""
    killed = 0
    for child in psutil.Process(worker_pid).children(recursive=False):
        try:
            child.send_signal(signal.SIGKILL)
            killed += 1
        except psutil.NoSuchProcess:
            pass
    return killed


def test_killed_worker_processes_and_duplicated_messages_never_double_reserve(platform, tokens, shoppers):
    product_id = create_product(platform, tokens, stock=100)
    for worker in platform.workers("catalog"):
        platform.stop_instance(worker, signal.SIGTERM)  # messages now wait in the queue
    try:
        responses = [checkout(platform, shoppers[i % len(shoppers)].token, [(product_id, 1)]) for i in range(20)]
        assert [r.status_code for r in responses] == [202] * 20
        order_ids = [r.json()["id"] for r in responses]

        # The replacement also runs the catalog's beat, as the worker it replaces did. A prefork
        # pool (as in the chart): its child processes are what gets killed below.
        worker = platform.platform.start_worker("catalog", beat=True, pool="prefork")
        # Kill the pool processes a few times while the backlog is being worked off.
        deadline = time.monotonic() + 30
        kills = 0
        while time.monotonic() < deadline and kills < 3:
            current = statuses(platform, tokens, order_ids)
            if count(current.values(), "reserved") >= 1:
                kills += bool(_kill_pool_children(worker.popen.pid))
            time.sleep(0.3)
        assert kills >= 1, "the worker never started on the backlog"

        # A duplicated reserve command (the same message twice, and again under a new id).
        duplicate = {"order_id": order_ids[0], "lines": [{"product_id": product_id, "quantity": 1}],
                     "expires_in_seconds": 900}  # fmt: skip
        sender = Celery(broker=platform.broker.url)
        message_id = str(uuid.uuid4())
        for mid in (message_id, message_id, str(uuid.uuid4())):
            sender.send_task("catalog.reserve_stock", kwargs={"message_id": mid, "payload": duplicate},
                             queue="catalog", task_id=str(uuid.uuid4()))  # fmt: skip

        final = settle(platform, tokens, order_ids)
        assert count(final.values(), "reserved") == 20
        time.sleep(2)  # let the duplicates be consumed
        assert stock_of(platform, tokens, product_id) == {"on_hand": 100, "reserved": 20, "available": 80}
    finally:
        # Leave a whole, fresh worker (the platform's usual pool) behind.
        for leftover in platform.workers("catalog"):
            platform.stop_instance(leftover, signal.SIGTERM)
        platform.ensure_one_instance_each()


def test_a_whole_worker_killed_mid_backlog_loses_no_task_and_reserves_once(platform, tokens, shoppers):
    # Given a backlog of reservations waiting for the catalog's worker
    product_id = create_product(platform, tokens, stock=50)
    for worker in platform.workers("catalog"):
        platform.stop_instance(worker, signal.SIGTERM)
    try:
        responses = [checkout(platform, shoppers[i % len(shoppers)].token, [(product_id, 1)]) for i in range(30)]
        assert [r.status_code for r in responses] == [202] * 30
        order_ids = [r.json()["id"] for r in responses]

        # When the worker dies as a machine would (SIGKILL to its whole process group) while it
        # is working the backlog off
        # (a thread-pool worker, as `make up` runs it: its tasks too must come back when it dies)
        doomed = platform.platform.start_worker("catalog", beat=True, pool="threads")
        deadline = time.monotonic() + 30
        while (reserved_at_kill := count(statuses(platform, tokens, order_ids).values(), "reserved")) == 0:
            assert time.monotonic() < deadline, "the worker never started on the backlog"
        platform.kill_instance(doomed)
        assert reserved_at_kill < 30, "the worker finished before it could be killed mid-backlog"

        # Then a new worker takes the queue, the dead one's tasks come back after the visibility
        # timeout, and every order is reserved exactly once
        platform.platform.start_worker("catalog", beat=True)
        final = settle(platform, tokens, order_ids)
        assert count(final.values(), "reserved") == 30
        assert stock_of(platform, tokens, product_id) == {"on_hand": 50, "reserved": 30, "available": 20}
    finally:
        for leftover in platform.workers("catalog"):
            platform.stop_instance(leftover, signal.SIGTERM)
        platform.ensure_one_instance_each()


def test_catalog_down_is_503_and_no_order(platform, tokens, shoppers):
    product_id = create_product(platform, tokens, stock=5)
    shopper = shoppers[-1]
    before = platform.api("GET", f"{ORDERS}?page_size=1", shopper.token).json()["count"]
    for instance in platform.instances("catalog"):
        platform.stop_instance(instance, signal.SIGTERM)
    try:
        response = checkout(platform, shopper.token, [(product_id, 1)])

        assert response.status_code == 503, response.text
        assert int(response.headers["Retry-After"]) >= 1
        assert response.headers["Content-Type"].startswith("application/problem+json")
        assert platform.api("GET", f"{ORDERS}?page_size=1", shopper.token).json()["count"] == before
    finally:
        platform.ensure_one_instance_each()
        wait_until_routed(platform, "/api/v1/catalog/products?page_size=1")


def wait_until_routed(platform, path: str, timeout: float = 30) -> None:
    """A restarted service is ready; wait until the gateway sends traffic to it again."""
    deadline = time.monotonic() + timeout
    while platform.api("GET", path).status_code != 200:
        if time.monotonic() > deadline:
            raise AssertionError(f"the gateway does not route {path} after {timeout}s")
        time.sleep(0.5)


def test_payment_paths_idempotency_and_privacy_through_the_gateway(platform, tokens, shoppers):
    product_id = create_product(platform, tokens, stock=5)
    # Neither may be staff, nor the merchant selling the product: both would see the order.
    owner = Shopper(DEMO_CUSTOMER.email, tokens[DEMO_CUSTOMER.email])
    other = Shopper(*platform.register_customer())
    key = {"Idempotency-Key": f"e2e-{uuid.uuid4().hex}"}

    first = checkout(platform, owner.token, [(product_id, 1)], **key)
    replay = checkout(platform, owner.token, [(product_id, 1)], **key)
    mismatch = checkout(platform, owner.token, [(product_id, 2)], **key)

    assert (first.status_code, replay.status_code, mismatch.status_code) == (202, 202, 422)
    order_id = first.json()["id"]
    assert replay.json()["id"] == order_id
    assert platform.api("GET", f"{ORDERS}/{order_id}", other.token).status_code == 404
    assert settle(platform, tokens, [order_id]) == {order_id: "reserved"}

    def pay(token: str) -> requests.Response:
        return platform.api("POST", f"{ORDERS}/{order_id}/pay", owner.token, json={"card_token": token})

    declined, timed_out, paid = pay("tok_decline"), pay("tok_timeout"), pay("tok_success")
    assert (declined.status_code, timed_out.status_code, paid.status_code) == (402, 504, 200)
    assert paid.json()["status"] == "paid"
    wait_for_stock(platform, tokens, product_id, {"on_hand": 4, "reserved": 0, "available": 4})
