"""The periodic reconciliation compares orders with the catalog's reservations both ways and
repairs through the saga's own messages; every repair is counted, logged and shown to support."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone
from prometheus_client import REGISTRY

from order_service.orders.models import Order, ReconciliationRepair
from order_service.orders.reconciliation import orders_reconcile
from order_service.orders.tasks import reconcile_reservations

pytestmark = pytest.mark.django_db


def _idle(*order_ids: str) -> None:
    Order.objects.filter(pk__in=order_ids).update(updated_at=timezone.now() - timedelta(hours=1))


def _repairs_counted(kind: str) -> float:
    return REGISTRY.get_sample_value("bazaar_reconciliation_repairs_total", {"kind": kind}) or 0


def test_a_pending_order_the_catalog_never_saw_is_asked_again(flow, neighbours, outbox_messages):
    order_id = flow.place()
    _idle(order_id)
    before = _repairs_counted("reserve_resent")

    repairs = orders_reconcile()

    assert [(str(r.order_id), r.kind, r.reservation_status) for r in repairs] == [(order_id, "reserve_resent", "none")]
    reserves = [p for _, p in outbox_messages("catalog.reserve_stock")]
    assert len(reserves) == 2
    assert reserves[0] == reserves[1]  # the same request, idempotent by order id on the catalog side
    assert _repairs_counted("reserve_resent") == before + 1
    assert flow.get(order_id)["timeline"][-1]["kind"] == "reconciled"


def test_a_paid_order_whose_reservation_is_still_held_is_committed_again(flow, neighbours, outbox_messages):
    order_id = flow.place_paid()
    neighbours.reservations[order_id] = ("held", "")
    _idle(order_id)

    (repair,) = orders_reconcile()

    assert (repair.kind, repair.order_status, repair.reservation_status) == ("commit_resent", "paid", "held")
    assert [p for _, p in outbox_messages("catalog.commit_reservation")] == [{"v": 2, "order_id": order_id}] * 2


def test_a_paid_order_the_catalog_committed_is_stamped(flow, neighbours):
    order_id = flow.place_paid()
    neighbours.reservations[order_id] = ("committed", "")
    _idle(order_id)

    (repair,) = orders_reconcile()

    assert repair.kind == "commit_stamped"
    assert Order.objects.get(pk=order_id).stock_committed_at is not None
    assert orders_reconcile() == []  # agreed now


def test_a_reserved_order_without_a_hold_is_cancelled(flow, neighbours):
    order_id = flow.place_reserved()
    neighbours.reservations[order_id] = ("released", "expired")
    _idle(order_id)

    (repair,) = orders_reconcile()

    assert repair.kind == "cancelled_hold_gone"
    assert Order.objects.get(pk=order_id).status == "cancelled"


def test_a_cancelled_order_still_held_is_released_and_one_already_released_is_left_alone(flow, neighbours):
    held, released = flow.place_reserved(), flow.place_reserved()
    for order_id in (held, released):
        assert flow.client.post(f"/api/v1/orders/{order_id}/cancel", {}, format="json").status_code == 200
    neighbours.reservations.update({held: ("held", ""), released: ("released", "Order cancelled.")})
    _idle(held, released)

    repairs = orders_reconcile()

    assert [(str(r.order_id), r.kind) for r in repairs] == [(held, "release_resent")]
    assert Order.objects.get(pk=released).stock_released_at is not None


def test_a_hold_without_a_live_order_is_released(flow, neighbours, outbox_messages):
    ghost = str(uuid.uuid4())
    neighbours.reservations[ghost] = ("held", "")
    neighbours.held_idle.append(ghost)

    (repair,) = orders_reconcile()

    assert (str(repair.order_id), repair.kind, repair.detail) == (ghost, "orphan_hold_released", "No such order.")
    assert [p["order_id"] for _, p in outbox_messages("catalog.release_reservation")] == [ghost]


def test_agreeing_and_busy_orders_are_not_touched(flow, neighbours):
    reserved = flow.place_reserved()
    neighbours.reservations[reserved] = ("held", "")
    _idle(reserved)
    flow.place()  # pending, but just placed: the saga is at work on it

    assert reconcile_reservations() == 0
    assert ReconciliationRepair.objects.count() == 0


def test_a_catalog_that_is_down_skips_the_round(flow, neighbours):
    order_id = flow.place()
    _idle(order_id)
    neighbours.take_down("catalog")

    assert reconcile_reservations() == 0
    assert ReconciliationRepair.objects.count() == 0


def test_reconciliation_is_scheduled_by_beat(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["orders-reconcile-reservations"]

    assert (entry["task"], entry["options"]["queue"]) == ("orders.reconcile_reservations", "orders")


def test_a_repaired_order_waits_a_full_idle_period_before_it_is_asked_again(flow, neighbours, outbox_messages):
    order_id = flow.place()
    _idle(order_id)

    first, second = orders_reconcile(), orders_reconcile()

    assert [r.kind for r in first] == ["reserve_resent"]
    assert second == []
    assert len(outbox_messages("catalog.reserve_stock")) == 2


def _agreeing_reserved_orders(flow, neighbours, count: int) -> list[str]:
    orders = [flow.place_reserved() for _ in range(count)]
    neighbours.reservations.update(dict.fromkeys(orders, ("held", "")))
    Order.objects.filter(pk__in=orders).update(updated_at=timezone.now() - timedelta(hours=2))
    return orders


def test_a_stuck_order_behind_more_agreeing_orders_than_a_batch_is_repaired(flow, neighbours, settings):
    # Given more reserved orders awaiting payment (held, agreeing) than one batch, all older than a
    # pending order whose reservation was lost
    settings.ORDER_RECONCILE_BATCH_SIZE = 2
    _agreeing_reserved_orders(flow, neighbours, 5)
    stuck = flow.place()
    _idle(stuck)

    # When one round runs, Then it walks past them to the stuck order
    assert [(str(r.order_id), r.kind) for r in orders_reconcile()] == [(stuck, "reserve_resent")]


def test_a_round_that_stops_at_its_batch_limit_is_resumed_by_the_next(flow, neighbours, settings):
    settings.ORDER_RECONCILE_BATCH_SIZE, settings.ORDER_RECONCILE_MAX_BATCHES = 2, 1
    _agreeing_reserved_orders(flow, neighbours, 3)
    stuck = flow.place()
    _idle(stuck)

    rounds = [[(str(r.order_id), r.kind) for r in orders_reconcile()] for _ in range(2)]

    # The first round saw the two oldest (agreeing); the second resumed after them.
    assert rounds == [[], [(stuck, "reserve_resent")]]
    # The walk reached the end: the round after starts at the oldest again (nothing to repair).
    assert orders_reconcile() == []
