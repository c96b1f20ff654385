"""The order saga on the catalog side: reserve, commit, release, expiry; idempotency; the ledger."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone
from factories import ProductFactory
from rest_framework.exceptions import ValidationError

from bazaar_common.outbox.models import OutboxMessage, ProcessedMessage
from catalog_service.inventory import tasks
from catalog_service.inventory.models import Reservation, Stock, StockMovement
from catalog_service.inventory.services import stock_adjust
from catalog_service.products import services

pytestmark = pytest.mark.django_db


def reserve(order_id: str, lines: list[tuple[int, int]], *, message_id: str | None = None, expires: int = 900):
    return tasks.reserve_stock(
        message_id=message_id or str(uuid.uuid4()),
        payload={
            "order_id": order_id,
            "lines": [{"product_id": pid, "quantity": qty} for pid, qty in lines],
            "expires_in_seconds": expires,
        },
    )


def replies() -> list[tuple[str, dict]]:
    return [(m.task_name, m.payload) for m in OutboxMessage.objects.order_by("created_at", "id")]


def stock(product) -> tuple[int, int]:
    row = Stock.objects.get(product=product)
    return row.on_hand, row.reserved


def assert_ledger_adds_up(product) -> None:
    totals = StockMovement.objects.filter(product=product).aggregate(
        on_hand=Sum("delta_on_hand"), reserved=Sum("delta_reserved")
    )
    assert (totals["on_hand"] or 0, totals["reserved"] or 0) == stock(product)


def test_reserve_all_lines_replies_stock_reserved():
    a, b = ProductFactory(initial_stock=5), ProductFactory(initial_stock=3)

    assert reserve("order-1", [(a.pk, 2), (b.pk, 3)]) is True

    assert stock(a) == (5, 2)
    assert stock(b) == (3, 3)
    reservation = Reservation.objects.get(order_id="order-1")
    assert reservation.status == "held"
    assert [(line.product_id, line.quantity) for line in reservation.lines.all()] == sorted([(a.pk, 2), (b.pk, 3)])
    assert replies() == [("orders.stock_reserved", {"order_id": "order-1"})]
    movement = StockMovement.objects.filter(product=a, reason="reserve").get()
    assert (movement.delta_on_hand, movement.delta_reserved, movement.order_id) == (0, 2, "order-1")
    assert (movement.on_hand_after, movement.reserved_after, movement.actor) == (5, 2, "service:orders")
    assert_ledger_adds_up(a)
    assert_ledger_adds_up(b)


def test_short_line_rejects_everything_with_shortages():
    a, b = ProductFactory(initial_stock=5), ProductFactory(initial_stock=1)

    reserve("order-1", [(a.pk, 2), (b.pk, 3)])

    assert stock(a) == (5, 0)
    assert stock(b) == (1, 0)
    assert Reservation.objects.get(order_id="order-1").status == "rejected"
    assert replies() == [
        (
            "orders.stock_rejected",
            {
                "order_id": "order-1",
                "reason": "out_of_stock",
                "shortages": [{"product_id": b.pk, "requested": 3, "available": 1}],
            },
        )
    ]
    assert StockMovement.objects.filter(reason="reserve").count() == 0


def test_unknown_and_inactive_products_are_rejected():
    active = ProductFactory(initial_stock=5)
    inactive = ProductFactory(initial_stock=5, is_active=False)

    reserve("order-1", [(active.pk, 1), (inactive.pk, 1), (999999, 2)])

    assert stock(active) == (5, 0)
    assert replies() == [
        (
            "orders.stock_rejected",
            {
                "order_id": "order-1",
                "reason": "unavailable_products",
                "shortages": [
                    {"product_id": inactive.pk, "requested": 1, "available": 0, "problem": "inactive"},
                    {"product_id": 999999, "requested": 2, "available": 0, "problem": "unknown"},
                ],
            },
        )
    ]


def test_malformed_lines_are_rejected_as_invalid():
    product = ProductFactory(initial_stock=5)

    reserve("order-1", [(product.pk, 0)])

    assert stock(product) == (5, 0)
    assert replies() == [
        ("orders.stock_rejected", {"order_id": "order-1", "reason": "invalid_request", "shortages": []})
    ]


def test_duplicate_lines_of_one_product_are_summed():
    product = ProductFactory(initial_stock=5)

    reserve("order-1", [(product.pk, 2), (product.pk, 3)])

    assert stock(product) == (5, 5)


def test_redelivered_message_changes_nothing_twice():
    product = ProductFactory(initial_stock=5)
    message_id = str(uuid.uuid4())

    first = reserve("order-1", [(product.pk, 2)], message_id=message_id)
    second = reserve("order-1", [(product.pk, 2)], message_id=message_id)

    assert (first, second) == (True, False)
    assert stock(product) == (5, 2)
    assert ProcessedMessage.objects.filter(message_id=message_id).count() == 1
    assert len(replies()) == 1


def test_duplicate_order_under_another_message_id_changes_nothing():
    product = ProductFactory(initial_stock=5)

    reserve("order-1", [(product.pk, 2)])
    reserve("order-1", [(product.pk, 2)])

    assert stock(product) == (5, 2)
    assert Reservation.objects.filter(order_id="order-1").count() == 1
    assert len(replies()) == 1
    assert_ledger_adds_up(product)


def test_a_rejected_order_stays_rejected_when_asked_again_after_restock():
    product = ProductFactory(initial_stock=1)
    reserve("order-1", [(product.pk, 3)])
    stock_adjust(product_id=product.pk, delta=10, actor="m", note="delivery")

    reserve("order-1", [(product.pk, 3)])

    assert stock(product) == (11, 0)
    assert [task for task, _ in replies()] == ["orders.stock_rejected"]


def test_commit_takes_units_off_hand_once():
    product = ProductFactory(initial_stock=5)
    reserve("order-1", [(product.pk, 2)])

    tasks.commit_reservation(message_id=str(uuid.uuid4()), payload={"order_id": "order-1"})
    tasks.commit_reservation(message_id=str(uuid.uuid4()), payload={"order_id": "order-1"})

    assert stock(product) == (3, 0)
    assert Reservation.objects.get(order_id="order-1").status == "committed"
    assert StockMovement.objects.filter(product=product, reason="commit").count() == 1
    assert_ledger_adds_up(product)


def test_release_gives_units_back_once():
    product = ProductFactory(initial_stock=5)
    reserve("order-1", [(product.pk, 2)])

    for _ in range(2):
        tasks.release_reservation(message_id=str(uuid.uuid4()), payload={"order_id": "order-1", "reason": "cancelled"})

    assert stock(product) == (5, 0)
    reservation = Reservation.objects.get(order_id="order-1")
    assert (reservation.status, reservation.release_reason) == ("released", "cancelled")
    assert StockMovement.objects.filter(product=product, reason="release").count() == 1
    assert_ledger_adds_up(product)


def test_release_before_reserve_leaves_a_tombstone_so_the_late_reserve_is_a_no_op():
    product = ProductFactory(initial_stock=5)

    tasks.release_reservation(message_id=str(uuid.uuid4()), payload={"order_id": "order-1", "reason": "cancelled"})
    reserve("order-1", [(product.pk, 2)])

    assert stock(product) == (5, 0)
    assert Reservation.objects.get(order_id="order-1").status == "released"
    assert replies() == []


def test_cancelling_a_committed_order_restocks():
    product = ProductFactory(initial_stock=5)
    reserve("order-1", [(product.pk, 2)])
    tasks.commit_reservation(message_id=str(uuid.uuid4()), payload={"order_id": "order-1"})

    tasks.release_reservation(message_id=str(uuid.uuid4()), payload={"order_id": "order-1", "reason": "refund"})

    assert stock(product) == (5, 0)
    assert StockMovement.objects.filter(product=product, reason="restock").count() == 1
    assert_ledger_adds_up(product)


def test_commit_after_release_changes_nothing():
    product = ProductFactory(initial_stock=5)
    reserve("order-1", [(product.pk, 2)])
    tasks.release_reservation(message_id=str(uuid.uuid4()), payload={"order_id": "order-1", "reason": "cancel"})

    tasks.commit_reservation(message_id=str(uuid.uuid4()), payload={"order_id": "order-1"})

    assert stock(product) == (5, 0)
    assert Reservation.objects.get(order_id="order-1").status == "released"


def test_expiry_releases_overdue_reservations_and_tells_the_order_service():
    product = ProductFactory(initial_stock=5)
    reserve("overdue", [(product.pk, 2)])
    reserve("fresh", [(product.pk, 1)])
    reserve("paid", [(product.pk, 1)])
    tasks.commit_reservation(message_id=str(uuid.uuid4()), payload={"order_id": "paid"})
    past = timezone.now() - timedelta(seconds=1)
    Reservation.objects.filter(order_id__in=["overdue", "paid"]).update(expires_at=past)
    OutboxMessage.objects.all().delete()

    released = tasks.expire_reservations()

    assert released == 1
    assert stock(product) == (4, 1)
    statuses = dict(Reservation.objects.values_list("order_id", "status"))
    assert statuses == {"overdue": "released", "fresh": "held", "paid": "committed"}
    assert replies() == [("orders.stock_rejected", {"order_id": "overdue", "reason": "expired", "shortages": []})]
    assert StockMovement.objects.filter(reason="expire", order_id="overdue").count() == 1
    assert tasks.expire_reservations() == 0
    assert_ledger_adds_up(product)


def test_expiry_is_scheduled_by_beat(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["catalog-expire-reservations"]

    assert entry["task"] == "catalog.expire_reservations"
    assert entry["options"]["queue"] == "catalog"
    assert tasks.expire_reservations.name == "catalog.expire_reservations"


def test_reservation_expiry_time_comes_from_the_message():
    product = ProductFactory(initial_stock=5)
    before = timezone.now()

    reserve("order-1", [(product.pk, 1)], expires=60)

    expires_at = Reservation.objects.get(order_id="order-1").expires_at
    assert before + timedelta(seconds=59) <= expires_at <= timezone.now() + timedelta(seconds=61)


def test_adjustment_cannot_take_on_hand_below_reserved():
    product = ProductFactory(initial_stock=5)
    reserve("order-1", [(product.pk, 4)])

    with pytest.raises(ValidationError) as excinfo:
        stock_adjust(product_id=product.pk, delta=-2, actor="m", note="damaged")

    assert "below the 4 units reserved" in str(excinfo.value)
    assert stock(product) == (5, 4)


def test_database_refuses_negative_or_over_reserved_stock():
    product = ProductFactory(initial_stock=2)

    for values in ({"on_hand": -1}, {"reserved": -1}, {"reserved": 3}):
        with pytest.raises(IntegrityError), transaction.atomic():
            Stock.objects.filter(product=product).update(**values)

    assert stock(product) == (2, 0)


def test_ledger_reproduces_the_numbers_after_a_mixed_history():
    product = ProductFactory(initial_stock=10)
    stock_adjust(product_id=product.pk, delta=5, actor="m", note="delivery")
    reserve("a", [(product.pk, 4)])
    reserve("b", [(product.pk, 3)])
    tasks.commit_reservation(message_id=str(uuid.uuid4()), payload={"order_id": "a"})
    tasks.release_reservation(message_id=str(uuid.uuid4()), payload={"order_id": "b", "reason": "cancel"})
    stock_adjust(product_id=product.pk, delta=-1, actor="m", note="damaged")
    services.product_update(product=product, data={"name": "Renamed"})

    assert stock(product) == (10, 0)
    assert_ledger_adds_up(product)
