"""Saga steps racing each other or a fault, on the real platform, checked from the databases.

The invariants are those of :func:`bazaar_devtools.consistency.consistency_violations` (none
pending, a paid order's stock committed and never put back on sale, nothing held without a live
order, stock equal to its ledger, nothing reserved, committed or charged twice), reached within
``SETTLE_SECONDS`` after the fault is healed.
"""

from __future__ import annotations

import signal
import time
from datetime import UTC, datetime, timedelta

import pytest
import requests

from bazaar_common.demo import DEMO_MERCHANT
from bazaar_devtools.consistency import create_product, execute, query, sign_in_demo_accounts, wait_until_consistent
from bazaar_devtools.e2e import wait_for
from bazaar_devtools.faults import FaultProxy

SETTLE_SECONDS = 60


@pytest.fixture(scope="module")
def tokens(platform) -> dict[str, str]:
    return sign_in_demo_accounts(platform.api)


def _shopper(tokens) -> str:
    return next(token for email, token in tokens.items() if email != DEMO_MERCHANT.email)


def _reserved_orders(platform, token: str, product_id: int, count: int) -> list[str]:
    order_ids = []
    for _ in range(count):
        body = {"items": [{"product_id": product_id, "quantity": 1}]}
        response = platform.api("POST", "/api/v1/orders", token, json=body)
        assert response.status_code == 202, response.text
        order_ids.append(response.json()["id"])
    for order_id in order_ids:
        wait_for(
            lambda order_id=order_id: (
                platform.api("GET", f"/api/v1/orders/{order_id}", token).json()["status"] == "reserved"
            ),
            30,
            f"order {order_id} reserved",
        )
    return order_ids


def _in(ids: list[str]) -> str:
    return ",".join(["%s"] * len(ids))


@pytest.mark.postgres
def test_a_paid_orders_hold_overdue_before_its_commit_arrives_is_never_put_back_on_sale(platform, tokens):
    # Given reserved orders
    shopper = _shopper(tokens)
    product_id = create_product(platform.api, tokens[DEMO_MERCHANT.email], stock=50)
    order_ids = _reserved_orders(platform, shopper, product_id, 6)
    catalog_db, orders_db = platform.database_url("catalog"), platform.database_url("orders")
    # ... and an order service whose messages cannot leave (its workers stopped, its instance
    # refused by the broker): the commits of the payments wait in its outbox
    for worker in platform.workers("orders"):
        platform.stop_instance(worker, signal.SIGTERM)
    refusing = FaultProxy.for_url(platform.broker.url)
    refusing.refuse()
    cut_off = platform.start_instance("orders", CELERY_BROKER_URL=refusing.url_for(platform.broker.url))
    try:
        # When the orders are paid, and their holds run out before the commits reach the catalog
        for order_id in order_ids:
            paid = requests.post(
                f"{cut_off.url}/api/v1/orders/{order_id}/pay",
                json={"card_token": "tok_success"},
                headers={"Authorization": f"Bearer {shopper}"},
                timeout=30,
            )
            assert paid.status_code == 200, paid.text
        past = datetime.now(UTC) - timedelta(seconds=1)
        sql = f"UPDATE inventory_reservation SET expires_at = %s WHERE order_id IN ({_in(order_ids)})"
        assert execute(catalog_db, sql, (past, *order_ids)) == len(order_ids)

        # Then the catalog asks the order service about every overdue hold, and releases none
        # while no answer can come
        asked_sql = (
            f"SELECT COUNT(*) FROM inventory_reservation WHERE expiry_asked_at IS NOT NULL "
            f"AND status = 'held' AND order_id IN ({_in(order_ids)})"
        )
        wait_for(lambda: query(catalog_db, asked_sql, tuple(order_ids))[0][0] == len(order_ids), 20, "holds asked")
        time.sleep(2)  # two more sweeps
        statuses = query(catalog_db, f"SELECT status FROM inventory_reservation WHERE order_id IN ({_in(order_ids)})",
                         tuple(order_ids))  # fmt: skip
        assert [status for (status,) in statuses] == ["held"] * len(order_ids)
    finally:
        platform.kill_instance(cut_off)
        refusing.close()
        platform.ensure_one_instance_each()

    # And once the order service is back, every paid order's hold is committed, never released
    problems = wait_until_consistent(
        orders_db=orders_db,
        catalog_db=catalog_db,
        order_ids=order_ids,
        product_ids=[product_id],
        timeout=SETTLE_SECONDS,
    )
    assert problems == []
    ((on_hand, reserved),) = query(catalog_db, "SELECT on_hand, reserved FROM inventory_stock WHERE product_id = %s",
                                   (product_id,))  # fmt: skip
    assert (on_hand, reserved) == (50 - len(order_ids), 0)
    answered = query(
        orders_db,
        f"SELECT COUNT(DISTINCT order_id) FROM orders_orderevent WHERE kind = 'hold_expiry_commit' "
        f"AND order_id::text IN ({_in(order_ids)})",
        tuple(order_ids),
    )
    assert answered == [(len(order_ids),)]


def _metric(proc, name: str, **labels: str) -> float:
    """The value of one sample on a process's metrics port (0 when absent)."""
    text = requests.get(f"http://127.0.0.1:{proc.metrics_port}/metrics", timeout=10).text
    wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith(f"{name}{{") and line.split("}")[0].removeprefix(f"{name}{{") == wanted:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _admin_page(platform, service: str, path: str, email: str) -> requests.Response:
    """``path`` of a service's Django admin, signed in through its real login form."""
    import re

    from bazaar_common.demo import DEMO_PASSWORD

    admin = platform.url(service) + "/admin/"
    session = requests.Session()
    login_page = session.get(admin + "login/", timeout=10)
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login_page.text).group(1)
    signed_in = session.post(
        admin + "login/?next=/admin/",
        data={"username": email, "password": DEMO_PASSWORD, "csrfmiddlewaretoken": csrf},
        headers={"Referer": admin + "login/"},
        timeout=30,
    )
    assert signed_in.status_code == 200, signed_in.text
    return session.get(admin + path, timeout=30)


@pytest.mark.postgres
def test_reconciliation_repairs_an_order_whose_reservation_answer_was_lost(platform, tokens):
    # Given a pending order the catalog reserved, whose answer was lost for good: the broker lost
    # it, the catalog's re-drive of it gave up, and no message is left that would repair it
    from bazaar_common.demo import DEMO_SUPPORT

    shopper = _shopper(tokens)
    product_id = create_product(platform.api, tokens[DEMO_MERCHANT.email], stock=10)
    catalog_db, orders_db = platform.database_url("catalog"), platform.database_url("orders")
    for worker in platform.workers("orders"):
        platform.stop_instance(worker, signal.SIGTERM)
    try:
        placed = platform.api(
            "POST", "/api/v1/orders", shopper, json={"items": [{"product_id": product_id, "quantity": 1}]}
        )
        assert placed.status_code == 202, placed.text
        order_id = placed.json()["id"]
        held = "SELECT status FROM inventory_reservation WHERE order_id = %s"
        wait_for(lambda: query(catalog_db, held, (order_id,)) == [("held",)], 30, "the catalog to hold the stock")
        now = datetime.now(UTC)
        # The catalog's re-drive of its answer gave up (as after its last attempt) ...
        gave_up = execute(
            catalog_db,
            "UPDATE outbox_outboxmessage SET ack_due_at = NULL, gave_up_at = %s "
            "WHERE task_name = 'orders.stock_reserved' AND payload->>'order_id' = %s",
            (now, order_id),
        )
        assert gave_up == 1
        # ... while the delivery acknowledgement of the reserve request got through (so the order
        # service does not ask again by itself) ...
        acked = execute(
            orders_db,
            "UPDATE outbox_outboxmessage SET ack_due_at = NULL, acked_at = %s, ack_outcome = 'handled' "
            "WHERE task_name = 'catalog.reserve_stock' AND payload->>'order_id' = %s",
            (now, order_id),
        )
        assert acked == 1
        # ... and the broker lost the answer itself
        platform.broker.purge()
    finally:
        platform.ensure_one_instance_each()
    worker = platform.workers("orders")[0]

    # When the orders worker's periodic reconciliation runs (every 5 s, orders idle 10 s)
    def reserved() -> bool:
        return platform.api("GET", f"/api/v1/orders/{order_id}", shopper).json()["status"] == "reserved"

    # Bound: the worker's start (up to ~2 min on a loaded 2-core CI machine), the order idle 10 s,
    # a round every 5 s, the catalog's answer.
    wait_for(reserved, 240, "the reconciliation to repair the order", interval=1)

    # Then the repair is in the database, counted, and listed for support in the orders admin
    repairs = query(
        orders_db,
        "SELECT kind, order_status, reservation_status FROM orders_reconciliationrepair WHERE order_id::text = %s",
        (order_id,),
    )
    assert repairs == [("reserve_resent", "pending", "held")]
    timeline = platform.api("GET", f"/api/v1/orders/{order_id}", shopper).json()["timeline"]
    assert "reconciled" in [entry["kind"] for entry in timeline]
    assert _metric(worker, "bazaar_reconciliation_repairs_total", kind="reserve_resent") >= 1
    page = _admin_page(platform, "orders", "orders/reconciliationrepair/?kind=reserve_resent", DEMO_SUPPORT.email)
    assert page.status_code == 200
    assert order_id in page.text
    problems = wait_until_consistent(
        orders_db=orders_db, catalog_db=catalog_db, order_ids=[order_id], product_ids=[product_id], timeout=30
    )
    assert problems == []


def _outbox_row(db: str, task: str, key: str, value: str) -> tuple[int, bool]:
    """(attempts, acknowledged) of the one outbox row of ``task`` whose payload has ``key`` = ``value``."""
    rows = query(
        db,
        "SELECT attempts, acked_at IS NOT NULL FROM outbox_outboxmessage WHERE task_name = %s AND payload->>%s = %s",
        (task, key, value),
    )
    assert len(rows) == 1, rows
    return rows[0]


@pytest.mark.postgres
def test_a_registration_message_lost_by_the_broker_is_sent_again_and_creates_the_profile(platform):
    # Given the profiles workers away and the broker losing the registration message
    import jwt

    for worker in platform.workers("profiles"):
        platform.stop_instance(worker, signal.SIGTERM)
    try:
        _, token = platform.register_customer()
        user_id = jwt.decode(token, options={"verify_signature": False})["sub"]
        platform.broker.purge()
        profile_sql = "SELECT COUNT(*) FROM profiles_profile WHERE user_id::text = %s"
        assert query(platform.database_url("profiles"), profile_sql, (user_id,)) == [(0,)]
    finally:
        platform.ensure_one_instance_each()

    # When auth's re-drive sends it again (no acknowledgement came), then its consumer created the
    # profile (read from the database: GET /profiles/me would create it on first use by itself)
    profiles_db, auth_db = platform.database_url("profiles"), platform.database_url("auth")
    wait_for(lambda: query(profiles_db, profile_sql, (user_id,)) == [(1,)], 90, "the profile")
    attempts, acknowledged = wait_for(
        lambda: (row := _outbox_row(auth_db, "profiles.user_registered", "user_id", user_id))[1] and row,
        30,
        "the acknowledgement",
    )
    assert acknowledged
    assert attempts >= 2  # sent again: the first send was lost with the broker's queue
    ((message_id,),) = query(
        auth_db,
        "SELECT id::text FROM outbox_outboxmessage WHERE task_name = 'profiles.user_registered' "
        "AND payload->>'user_id' = %s",
        (user_id,),
    )
    handled = "SELECT COUNT(*) FROM outbox_processedmessage WHERE message_id = %s"
    assert query(profiles_db, handled, (message_id,)) == [(1,)]


@pytest.mark.postgres
def test_an_erasure_lost_by_the_broker_is_sent_again_and_reaches_every_service(platform, tokens):
    # Given a customer with an order, the orders workers away, and the broker losing the erasure
    # the profile service sent (to auth and to orders)
    import uuid

    import jwt

    email, password = f"erased-{uuid.uuid4().hex[:10]}@example.com", f"Pw-{uuid.uuid4().hex}"
    registered = platform.api("POST", "/api/v1/auth/register", json={"email": email, "password": password})
    assert registered.status_code == 201, registered.text
    token = platform.token(email, password)
    user_id = jwt.decode(token, options={"verify_signature": False})["sub"]
    product_id = create_product(platform.api, tokens[DEMO_MERCHANT.email], stock=5)
    placed = platform.api("POST", "/api/v1/orders", token, json={"items": [{"product_id": product_id, "quantity": 1}]})
    assert placed.status_code == 202, placed.text
    order_id = placed.json()["id"]
    wait_for(lambda: platform.api("GET", "/api/v1/profiles/me", token).status_code == 200, 30, "the profile")
    orders_db, profiles_db = platform.database_url("orders"), platform.database_url("profiles")
    for worker in platform.workers("orders"):
        platform.stop_instance(worker, signal.SIGTERM)
    try:
        erased = platform.api("DELETE", "/api/v1/profiles/me", token, json={"password": password})
        assert erased.status_code == 204, erased.text
        platform.broker.purge()
    finally:
        platform.ensure_one_instance_each()

    # When the profile service's re-drive sends it again (no acknowledgement came), then the
    # order service anonymised the order and auth closed the account
    erased_sql = "SELECT customer_email, customer_erased_at IS NOT NULL FROM orders_order WHERE id::text = %s"
    wait_for(lambda: query(orders_db, erased_sql, (order_id,)) == [("", True)], 60, "the order to be anonymised")
    sign_in = {"email": email, "password": password}
    wait_for(lambda: platform.api("POST", "/api/v1/auth/token", json=sign_in).status_code == 401, 60, "auth")
    for route in ("orders.user_erased", "auth.user_erased"):
        wait_for(
            lambda route=route: _outbox_row(profiles_db, route, "user_id", user_id)[1],
            30,
            f"the acknowledgement of {route}",
        )
    # the orders route was sent again: its first send was lost with the broker's queue
    assert _outbox_row(profiles_db, "orders.user_erased", "user_id", user_id)[0] >= 2
