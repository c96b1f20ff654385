"""Concurrent requests against one order or one Idempotency-Key (real transactions, PostgreSQL)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from bazaar_common.outbox.models import OutboxMessage
from order_service.orders.models import Order, PaymentAttempt, SimulatedCharge

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
