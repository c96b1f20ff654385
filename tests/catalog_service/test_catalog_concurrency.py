"""Concurrent reservations on PostgreSQL never reserve more than is on hand."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connections
from django.db.models import Sum
from factories import ProductFactory

from catalog_service.inventory import tasks
from catalog_service.inventory.models import Reservation, Stock, StockMovement

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def run_concurrently(calls: list, *, workers: int) -> list:
    """Run each call in its own thread (its own database connection), all released at once."""
    barrier = threading.Barrier(len(calls))

    def run(call):
        try:
            barrier.wait(timeout=30)
            return call()
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return [future.result() for future in [pool.submit(run, call) for call in calls]]


def reserve_call(order_id: str, lines: list[tuple[int, int]]):
    payload = {"order_id": order_id, "lines": [{"product_id": p, "quantity": q} for p, q in lines]}
    return lambda: tasks.reserve_stock(message_id=str(uuid.uuid4()), payload=payload)


def ledger_totals(product) -> tuple[int, int]:
    totals = StockMovement.objects.filter(product=product).aggregate(
        on_hand=Sum("delta_on_hand"), reserved=Sum("delta_reserved")
    )
    return totals["on_hand"], totals["reserved"]


def test_sixty_concurrent_reservations_for_ten_units_reserve_exactly_ten():
    # given: 10 units, and 60 orders of one unit each arriving at the same moment
    product = ProductFactory(initial_stock=10)
    calls = [reserve_call(f"order-{n}", [(product.pk, 1)]) for n in range(60)]

    # when
    results = run_concurrently(calls, workers=60)

    # then: every message handled, exactly 10 held, 50 rejected, nothing negative, ledger agrees
    assert results == [True] * 60
    stock = Stock.objects.get(product=product)
    assert (stock.on_hand, stock.reserved, stock.available) == (10, 10, 0)
    statuses = list(Reservation.objects.values_list("status", flat=True))
    assert statuses.count("held") == 10
    assert statuses.count("rejected") == 50
    assert StockMovement.objects.filter(product=product, reason="reserve").count() == 10
    assert ledger_totals(product) == (10, 10)


def test_concurrent_orders_with_lines_in_opposite_order_do_not_deadlock():
    # given: two products, orders naming them in both orders, and duplicates of each order
    a, b = ProductFactory(initial_stock=15), ProductFactory(initial_stock=15)
    calls = []
    for n in range(20):
        lines = [(a.pk, 1), (b.pk, 1)] if n % 2 else [(b.pk, 1), (a.pk, 1)]
        calls.append(reserve_call(f"order-{n}", lines))
        calls.append(reserve_call(f"order-{n}", lines))  # the same order, another message

    results = run_concurrently(calls, workers=40)

    assert results == [True] * 40
    held = Reservation.objects.filter(status="held").count()
    assert held == 15
    assert Reservation.objects.count() == 20
    for product in (a, b):
        stock = Stock.objects.get(product=product)
        assert (stock.on_hand, stock.reserved) == (15, 15)
        assert ledger_totals(product) == (15, 15)
