"""Concurrent requests against one order or one Idempotency-Key (real transactions, PostgreSQL)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from bazaar_common.outbox.models import OutboxMessage
from order_service.orders.models import Order, OrderLine, PaymentAttempt, SimulatedCharge

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def in_threads(count: int, call) -> list:
    def run(_):
        try:
            return call()
        finally:
            connection.close()  # each thread has its own connection; give it back

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(run, range(count)))


def test_concurrent_checkouts_with_one_idempotency_key_make_one_order(flow, neighbours):
    neighbours.add_product(1)

    responses = in_threads(8, lambda: flow.checkout([(1, 2)], HTTP_IDEMPOTENCY_KEY="double-click"))

    assert [r.status_code for r in responses] == [202] * 8
    assert len({r.json()["id"] for r in responses}) == 1
    assert Order.objects.count() == 1
    # The losers' transactions rolled back, and their reservation requests with them.
    assert OutboxMessage.objects.filter(task_name="catalog.reserve_stock").count() == 1


def test_concurrent_payments_of_one_order_charge_once(flow):
    order_id = flow.place_reserved()

    responses = in_threads(6, lambda: flow.pay(order_id, "tok_success"))

    codes = sorted(r.status_code for r in responses)
    assert codes.count(200) >= 1
    assert set(codes) <= {200, 409}
    assert SimulatedCharge.objects.count() == 1
    assert PaymentAttempt.objects.get().status == "succeeded"
    assert Order.objects.get(pk=order_id).status == "paid"


def test_racing_checkouts_of_one_customer_pass_the_unpaid_hold_cap_once(flow, neighbours, settings):
    # Given a cap of 5 unpaid units per product, and a customer holding none yet
    settings.ORDER_MAX_UNPAID_UNITS_PER_PRODUCT = 5
    neighbours.add_product(1)

    # When six checkouts of 3 units race (each of them alone is within the cap)
    responses = in_threads(6, lambda: flow.checkout([(1, 3)]))

    # Then exactly one is accepted; the others are refused naming the cap, and wrote nothing
    codes = sorted(r.status_code for r in responses)
    assert codes == [202, 409, 409, 409, 409, 409], [r.json() for r in responses]
    refused = next(r.json() for r in responses if r.status_code == 409)
    assert "more than 5 units of product(s) 1" in refused["detail"]
    assert Order.objects.count() == 1
    assert list(OrderLine.objects.values_list("product_id", "quantity")) == [(1, 3)]
    assert OutboxMessage.objects.filter(task_name="catalog.reserve_stock").count() == 1
