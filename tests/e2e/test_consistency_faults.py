"""Message delivery and the order saga under faults, with checkouts and payments going on.

Each test injects one fault into the running platform while :class:`ShopperLoad` keeps placing
and paying orders, heals it, and then checks FROM THE DATABASES (``consistency_violations``):
every accepted order final or expectedly waiting (none pending), no paid order without committed
stock, no held or committed stock without a live order, stock equal to its ledger and to the
held reservations, nothing reserved, committed or charged twice; and from the answers: zero 500s,
zero failed idempotent GETs. The bound for settling is ``SETTLE_SECONDS`` after the fault is
healed (e2e re-drive: 2 s, 4 s, 8 s, then every 10 s; reconciliation every 5 s of orders idle 10 s).
"""

from __future__ import annotations

import signal
import time

import pytest
import requests.adapters

from bazaar_common.demo import DEMO_MERCHANT
from bazaar_devtools.consistency import ShopperLoad, create_product, sign_in_demo_accounts, wait_until_consistent
from bazaar_devtools.faults import REFUSE, FaultProxy, freeze_in_background, kill_tree

pytestmark = pytest.mark.consistency
SETTLE_SECONDS = 60


@pytest.fixture(scope="module")
def tokens(platform) -> dict[str, str]:
    platform.http.mount("http://", requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=64))
    return sign_in_demo_accounts(platform.api)


def _product(platform, tokens, stock: int = 500) -> int:
    return create_product(platform.api, tokens[DEMO_MERCHANT.email], stock=stock)


def _load(platform, tokens, product_id: int, threads: int = 4) -> ShopperLoad:
    shoppers = [token for email, token in tokens.items() if email != DEMO_MERCHANT.email]
    return ShopperLoad(api=platform.api, tokens=shoppers, product_id=product_id, threads=threads).start()


def assert_settles_consistent(platform, load: ShopperLoad, product_id: int, timeout: float = SETTLE_SECONDS) -> None:
    """Wait (at most ``timeout`` s) until the databases hold no broken invariant, then assert it."""
    assert load.order_ids, "the load placed no order"
    problems = wait_until_consistent(
        orders_db=platform.database_url("orders"),
        catalog_db=platform.database_url("catalog"),
        order_ids=load.order_ids,
        product_ids=[product_id],
        timeout=timeout,
    )
    assert problems == []
    assert load.server_errors == 0, dict(load.answers)
    assert load.failed_reads == []


def _restore(platform) -> None:
    platform.ensure_one_instance_each()


def test_broker_emptied_with_messages_in_flight(platform, tokens):
    product_id = _product(platform, tokens)
    for worker in platform.workers("catalog"):
        platform.stop_instance(worker, signal.SIGTERM)  # reserve requests now wait in the broker
    load = _load(platform, tokens, product_id)
    try:
        time.sleep(4)
        assert load.order_ids
        # The broker loses everything it held (a restart without persistence).
        platform.broker.purge()
        platform.start_worker("catalog", beat=True)
        time.sleep(3)
    finally:
        load.stop()
        _restore(platform)
    assert_settles_consistent(platform, load, product_id)


def test_catalog_and_orders_workers_sigkilled_mid_backlog(platform, tokens):
    product_id = _product(platform, tokens)
    load = _load(platform, tokens, product_id)
    try:
        time.sleep(3)
        for service in ("catalog", "orders"):
            for worker in platform.workers(service):
                kill_tree(worker.popen.pid)  # no ack, no relay round, no goodbye
        time.sleep(2)
        _restore(platform)
        time.sleep(3)
    finally:
        load.stop()
        _restore(platform)
    assert_settles_consistent(platform, load, product_id)


def test_publisher_killed_between_commit_and_publish(platform, tokens):
    # Given an orders instance whose broker refuses it: its checkouts commit but never publish
    product_id = _product(platform, tokens)
    refusing = FaultProxy.for_url(platform.broker.url)
    refusing.refuse()
    doomed = platform.start_instance("orders", CELERY_BROKER_URL=refusing.url_for(platform.broker.url))
    shopper = next(token for email, token in tokens.items() if email != DEMO_MERCHANT.email)
    order_ids = []
    try:
        for _ in range(5):
            response = requests.post(
                f"{doomed.url}/api/v1/orders",
                json={"items": [{"product_id": product_id, "quantity": 1}]},
                headers={"Authorization": f"Bearer {shopper}"},
                timeout=30,
            )
            assert response.status_code == 202, response.text
            order_ids.append(response.json()["id"])
        # When that instance dies with its messages committed but unpublished
        platform.kill_instance(doomed)
    finally:
        refusing.close()
        _restore(platform)

    # Then the relay of the orders worker publishes them and every order is reserved
    load = ShopperLoad(api=platform.api, tokens=[shopper], product_id=product_id, threads=0)
    load.order_ids.extend(order_ids)
    assert_settles_consistent(platform, load, product_id)
    statuses = platform.api("GET", f"/api/v1/orders/{order_ids[0]}", shopper).json()["status"]
    assert statuses == "reserved"


@pytest.mark.postgres
def test_orders_database_refusing_connections_for_a_few_seconds(platform, tokens):
    # Given the orders worker (which applies the catalog's answers) reaches PostgreSQL through a proxy
    product_id = _product(platform, tokens)
    proxy = FaultProxy.for_url(platform.database_url("orders"))
    for worker in platform.workers("orders"):
        platform.stop_instance(worker, signal.SIGTERM)
    platform.start_worker("orders", beat=True, DATABASE_URL=proxy.url_for(platform.database_url("orders")))
    load = _load(platform, tokens, product_id)
    try:
        time.sleep(3)
        # When the database refuses (and drops) its connections for 5 s under checkout load
        with proxy.fault(REFUSE, 5):
            pass
        time.sleep(3)
    finally:
        load.stop()
        for worker in platform.workers("orders"):
            platform.stop_instance(worker, signal.SIGTERM)
        proxy.close()
        _restore(platform)
    # Then the consumers retried instead of dropping the messages
    assert_settles_consistent(platform, load, product_id)


def test_a_catalog_instance_frozen_for_10_seconds(platform, tokens):
    product_id = _product(platform, tokens)
    extra = platform.start_instance("catalog")
    platform.wait_registered("catalog", 2)
    load = _load(platform, tokens, product_id)
    try:
        time.sleep(2)
        freeze_in_background(extra.popen.pid, 10).join()
        time.sleep(2)
    finally:
        load.stop()
        platform.stop_instance(extra, signal.SIGTERM)
    assert_settles_consistent(platform, load, product_id)
