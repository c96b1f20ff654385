"""The order saga on the catalog side: reserve, commit, release, expiry; idempotency; the ledger."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone
from factories import ProductFactory

from bazaar_common.contracts import message_class_for
from bazaar_common.domain import InvalidInput
from bazaar_common.outbox.models import DeadLetter, OutboxMessage, ProcessedMessage
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


def replies(*tasks_: str) -> list[tuple[str, dict]]:
    """The replies written to the outbox (of ``tasks_`` only, when given), each checked against
    its contract (it parses on the consumer side) and shown without the version field."""
    found = []
    for message in OutboxMessage.objects.order_by("created_at", "id"):
        if tasks_ and message.task_name not in tasks_:
            continue
        contract = message_class_for(message.task_name)
        assert contract is not None
        assert message.payload["v"] == contract.VERSION
        contract.parse(message.payload)
        found.append((message.task_name, {k: v for k, v in message.payload.items() if k != "v"}))
    return found


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


def test_malformed_lines_are_dead_lettered_and_the_sender_is_told():
    product = ProductFactory(initial_stock=5)

    handled = tasks.reserve_stock(
        message_id="m-bad",
        payload={"v": 2, "order_id": "order-1", "lines": [{"product_id": product.pk, "quantity": 0}]},
        reply_queue="orders",
    )

    assert handled is False
    assert stock(product) == (5, 0)
    assert not Reservation.objects.filter(order_id="order-1").exists()
    (letter,) = DeadLetter.objects.all()
    assert (letter.message_id, letter.task_name) == ("m-bad", "catalog.reserve_stock")
    assert letter.reason == "lines.0.quantity: Input should be greater than or equal to 1"
    assert replies() == [
        ("outbox.ack", {"message_id": "m-bad", "task": "catalog.reserve_stock", "outcome": "dead_lettered"})
    ]
    # A redelivery of the same bytes is not dead-lettered twice.
    assert tasks.reserve_stock(message_id="m-bad", payload=letter.payload, reply_queue="orders") is False
    assert DeadLetter.objects.count() == 1


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
    # The order service re-asked (its answer may have been lost): the same answer again.
    assert replies() == [("orders.stock_reserved", {"order_id": "order-1"})] * 2
    assert_ledger_adds_up(product)


def test_a_rejected_order_stays_rejected_when_asked_again_after_restock():
    product = ProductFactory(initial_stock=1)
    reserve("order-1", [(product.pk, 3)])
    stock_adjust(product_id=product.pk, delta=10, actor="m", note="delivery")

    reserve("order-1", [(product.pk, 3)])

    assert stock(product) == (11, 0)
    assert [task for task, _ in replies()] == ["orders.stock_rejected"] * 2


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
    assert replies() == [("orders.stock_released", {"order_id": "order-1", "outcome": "nothing_held"})]


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


def test_an_overdue_hold_is_not_released_on_the_catalogs_clock_the_order_service_is_asked():
    # Given an overdue hold, a fresh one, and an overdue one already committed (paid)
    product = ProductFactory(initial_stock=5)
    reserve("overdue", [(product.pk, 2)])
    reserve("fresh", [(product.pk, 1)])
    reserve("paid", [(product.pk, 1)])
    tasks.commit_reservation(message_id=str(uuid.uuid4()), payload={"order_id": "paid"})
    past = timezone.now() - timedelta(seconds=1)
    Reservation.objects.filter(order_id__in=["overdue", "paid"]).update(expires_at=past)
    OutboxMessage.objects.all().delete()

    # When the sweep runs
    asked = tasks.expire_reservations()

    # Then nothing goes back on sale: the order service is asked about the overdue hold, once
    assert asked == 1
    assert stock(product) == (4, 3)
    statuses = dict(Reservation.objects.values_list("order_id", "status"))
    assert statuses == {"overdue": "held", "fresh": "held", "paid": "committed"}
    assert replies() == [("orders.hold_expiring", {"order_id": "overdue"})]
    assert not StockMovement.objects.filter(reason__in=["expire", "release"]).exists()
    assert tasks.expire_reservations() == 0
    assert_ledger_adds_up(product)


def test_an_overdue_hold_still_held_is_asked_about_again_after_the_reask_interval(settings):
    settings.INVENTORY_EXPIRY_REASK_SECONDS = 60
    product = ProductFactory(initial_stock=5)
    reserve("kept", [(product.pk, 1)])
    Reservation.objects.filter(order_id="kept").update(expires_at=timezone.now() - timedelta(seconds=1))
    assert tasks.expire_reservations() == 1
    OutboxMessage.objects.all().delete()

    # The order service kept it (still inside its payment window): no answer came
    Reservation.objects.filter(order_id="kept").update(expiry_asked_at=timezone.now() - timedelta(seconds=61))

    assert tasks.expire_reservations() == 1
    assert replies() == [("orders.hold_expiring", {"order_id": "kept"})]
    assert Reservation.objects.get(order_id="kept").status == "held"


def test_the_order_services_answer_to_an_overdue_hold_commits_or_releases_it():
    product = ProductFactory(initial_stock=5)
    reserve("paid-late", [(product.pk, 2)])
    reserve("unpaid", [(product.pk, 1)])
    Reservation.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    tasks.expire_reservations()

    commit("paid-late")
    tasks.release_reservation(message_id=str(uuid.uuid4()), payload={"order_id": "unpaid", "reason": "Order expired."})

    assert stock(product) == (3, 0)
    statuses = dict(Reservation.objects.values_list("order_id", "status"))
    assert statuses == {"paid-late": "committed", "unpaid": "released"}
    assert_ledger_adds_up(product)


def expired_before_hold_expiring(order_id: str) -> None:
    """A hold released on the catalog's own clock, as catalogs before HoldExpiring did."""
    from catalog_service.inventory.services import REJECT_EXPIRED, _release_held

    with transaction.atomic():
        reservation = Reservation.objects.select_for_update().get(order_id=order_id)
        _release_held(
            reservation, reason=REJECT_EXPIRED, movement_reason=StockMovement.Reason.EXPIRE, actor="system:old"
        )


def commit(order_id: str) -> None:
    tasks.commit_reservation(message_id=str(uuid.uuid4()), payload={"v": 2, "order_id": order_id})


def test_commit_answers_committed_and_a_repeat_answers_the_same_without_change():
    product = ProductFactory(initial_stock=5)
    reserve("order-1", [(product.pk, 2)])
    OutboxMessage.objects.all().delete()

    commit("order-1")
    commit("order-1")

    assert stock(product) == (3, 0)
    assert replies() == [("orders.stock_committed", {"order_id": "order-1", "outcome": "committed"})] * 2
    assert_ledger_adds_up(product)


def test_commit_of_a_hold_that_expired_takes_the_units_again_so_a_paid_order_is_never_on_sale():
    # Given the hold of an order expired on an older catalog's clock (its commit was late) and the
    # units went back on sale
    product = ProductFactory(initial_stock=5)
    reserve("paid-late", [(product.pk, 2)])
    expired_before_hold_expiring("paid-late")
    assert stock(product) == (5, 0)
    OutboxMessage.objects.all().delete()

    # When the commit of the paid order arrives
    commit("paid-late")

    # Then the units are taken again and the order service is told so
    assert stock(product) == (3, 0)
    assert Reservation.objects.get(order_id="paid-late").status == "committed"
    assert replies() == [("orders.stock_committed", {"order_id": "paid-late", "outcome": "recommitted"})]
    assert_ledger_adds_up(product)


def test_commit_of_an_expired_hold_whose_units_were_sold_meanwhile_fails_loudly():
    product = ProductFactory(initial_stock=2)
    reserve("paid-late", [(product.pk, 2)])
    expired_before_hold_expiring("paid-late")
    reserve("other", [(product.pk, 1)])
    OutboxMessage.objects.all().delete()

    commit("paid-late")

    assert stock(product) == (2, 1)  # nothing taken: one unit is not enough for two
    assert Reservation.objects.get(order_id="paid-late").status == "released"
    assert replies() == [("orders.stock_committed", {"order_id": "paid-late", "outcome": "failed"})]
    assert_ledger_adds_up(product)


def test_release_answers_what_it_did():
    product = ProductFactory(initial_stock=5)
    reserve("held", [(product.pk, 1)])
    reserve("sold", [(product.pk, 1)])
    commit("sold")
    OutboxMessage.objects.all().delete()

    for order_id in ("held", "sold", "held", "never"):
        tasks.release_reservation(message_id=str(uuid.uuid4()), payload={"order_id": order_id, "reason": "cancel"})

    assert [(body["order_id"], body["outcome"]) for _, body in replies()] == [
        ("held", "released"),
        ("sold", "restocked"),
        ("held", "nothing_held"),
        ("never", "nothing_held"),
    ]
    assert stock(product) == (5, 0)


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

    with pytest.raises(InvalidInput) as excinfo:
        stock_adjust(product_id=product.pk, delta=-2, actor="m", note="damaged")

    assert "below the 4 units reserved" in str(excinfo.value.field_errors["delta"])
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
