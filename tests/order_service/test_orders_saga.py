"""The saga's consumers apply the catalog's answers once, whatever is redelivered or late."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from bazaar_common import contracts
from bazaar_common.outbox.models import ProcessedMessage
from order_service.orders.models import Order

pytestmark = pytest.mark.django_db


def test_stock_reserved_makes_a_pending_order_reserved_with_a_payment_deadline(flow, settings):
    order_id = flow.place()
    before = timezone.now()

    assert flow.reply_reserved(order_id) is True

    order = flow.get(order_id)
    assert order["status"] == "reserved"
    assert [(e["from_status"], e["to_status"], e["actor"]) for e in order["timeline"]] == [
        ("pending", "pending", order["customer_id"]),
        ("pending", "reserved", "service:catalog"),
    ]
    due = Order.objects.get(pk=order_id).payment_due_at
    expected = before + timedelta(seconds=settings.ORDER_PAYMENT_TIMEOUT_SECONDS)
    assert expected - timedelta(seconds=5) <= due <= expected + timedelta(seconds=5)


def test_a_redelivered_reply_is_a_no_op(flow):
    order_id = flow.place()

    first = flow.reply_reserved(order_id, message_id="msg-1")
    second = flow.reply_reserved(order_id, message_id="msg-1")

    assert (first, second) == (True, False)
    assert len(flow.get(order_id)["timeline"]) == 2
    assert ProcessedMessage.objects.filter(message_id="msg-1").count() == 1


def test_a_duplicated_reply_with_a_new_id_changes_nothing(flow):
    order_id = flow.place()
    flow.reply_reserved(order_id)
    due = Order.objects.get(pk=order_id).payment_due_at

    flow.reply_reserved(order_id)

    assert flow.get(order_id)["status"] == "reserved"
    assert len(flow.get(order_id)["timeline"]) == 2
    assert Order.objects.get(pk=order_id).payment_due_at == due


def test_stock_rejected_makes_the_order_rejected_with_the_reasons(flow):
    order_id = flow.place([(1, 20)])
    shortages = [{"product_id": 1, "requested": 20, "available": 3}]

    flow.reply_rejected(order_id, shortages, message_id="rej-1")
    flow.reply_rejected(order_id, shortages, message_id="rej-1")

    order = flow.get(order_id)
    assert order["status"] == "rejected"
    assert order["rejection"] == {"reason": "out_of_stock", "shortages": shortages}
    assert [e["to_status"] for e in order["timeline"]] == ["pending", "rejected"]


def test_a_late_rejection_does_not_undo_a_reservation(flow):
    order_id = flow.place()
    flow.reply_reserved(order_id)

    flow.reply_rejected(order_id, [])

    assert flow.get(order_id)["status"] == "reserved"


def test_stock_reserved_for_an_order_cancelled_meanwhile_is_given_back(flow, outbox_messages):
    order_id = flow.place()
    assert flow.client.post(f"/api/v1/orders/{order_id}/cancel", {}, format="json").status_code == 200

    flow.reply_reserved(order_id)

    assert flow.get(order_id)["status"] == "cancelled"
    releases = outbox_messages("catalog.release_reservation")
    assert [payload["order_id"] for _, payload in releases] == [order_id, order_id]


def test_a_reply_for_an_unknown_order_is_recorded_and_ignored(flow):
    assert flow.reply_reserved("4b1d3b8e-0000-4000-8000-000000000000") is True
    assert flow.reply_reserved("not-a-uuid") is True
    assert Order.objects.count() == 0


def test_user_erased_anonymises_orders_and_drops_the_cart(flow, customer_id, neighbours):
    from order_service.orders.tasks import user_erased

    order_id = flow.place()
    flow.client.post("/api/v1/cart/items", {"product_id": 1, "quantity": 1}, format="json")

    user_erased(message_id="erase-1", payload={"user_id": customer_id})
    user_erased(message_id="erase-1", payload={"user_id": customer_id})

    order = Order.objects.get(pk=order_id)
    assert (order.customer_email, order.shipping_address) == ("", {})
    assert order.customer_erased_at is not None
    assert str(order.total) == "20.00"
    assert order.lines.count() == 1
    assert flow.client.get("/api/v1/cart").json()["items"] == []


def test_the_catalogs_own_expiry_cancels_a_reserved_order(flow, outbox_messages):
    from order_service.orders.tasks import stock_rejected

    order_id = flow.place_reserved()

    stock_rejected(message_id="exp-1", payload={"order_id": order_id, "reason": "expired", "shortages": []})

    order = flow.get(order_id)
    assert order["status"] == "cancelled"
    assert order["timeline"][-1]["reason"] == "The stock reservation expired."
    assert outbox_messages("catalog.release_reservation") == []  # the catalog released it already
    assert flow.pay(order_id).status_code == 409


def _deliver(task, order_id: str, message: contracts.Message, *, message_id: str | None = None) -> bool:
    return task(message_id=message_id or str(uuid.uuid4()), payload=message.to_payload(), reply_queue="catalog")


def test_the_catalogs_commit_answer_is_stamped_and_acknowledged(flow, outbox_messages):
    from order_service.orders.tasks import stock_committed

    order_id = flow.place_paid()
    message = contracts.StockCommitted(order_id=order_id, outcome=contracts.CommitOutcome.COMMITTED)

    _deliver(stock_committed, order_id, message, message_id="commit-ack-1")

    order = Order.objects.get(pk=order_id)
    assert order.stock_committed_at is not None
    assert order.support_flag == ""
    assert outbox_messages("outbox.ack") == [
        ("outbox.ack", {"v": 1, "message_id": "commit-ack-1", "task": "orders.stock_committed", "outcome": "handled"})
    ]


def test_an_expiry_notice_for_a_paid_order_asks_for_the_commit_again_at_once(flow, outbox_messages):
    from order_service.orders.tasks import stock_rejected

    order_id = flow.place_paid()
    notice = contracts.StockRejected(order_id=order_id, reason=contracts.RejectReason.EXPIRED)

    _deliver(stock_rejected, order_id, notice)

    assert Order.objects.get(pk=order_id).status == "paid"
    commits = outbox_messages("catalog.commit_reservation")
    assert [payload for _, payload in commits] == [{"v": 2, "order_id": order_id}] * 2
    assert flow.get(order_id)["timeline"][-1]["kind"] == "stock_expired"


def test_a_paid_order_whose_stock_cannot_be_committed_is_flagged_for_support(flow):
    from order_service.orders.tasks import stock_committed

    order_id = flow.place_paid()

    failed = contracts.StockCommitted(order_id=order_id, outcome=contracts.CommitOutcome.FAILED)
    _deliver(stock_committed, order_id, failed)

    order = Order.objects.get(pk=order_id)
    assert order.support_flag == "Paid, but the catalog could not commit its stock."
    assert order.stock_committed_at is None
    assert Order.objects.filter(support_flag__gt="").count() == 1


def test_a_reserve_never_acknowledged_rejects_the_order_releases_and_flags_it(flow, settings, outbox_messages):
    from bazaar_common.outbox.models import OutboxMessage
    from bazaar_common.outbox.services import outbox_redrive

    # Given a pending order whose reserve request was sent the last allowed time, unanswered
    order_id = flow.place()
    settings.OUTBOX_MAX_ATTEMPTS = 3
    OutboxMessage.objects.filter(task_name="catalog.reserve_stock").update(
        published_at=timezone.now(), attempts=3, ack_due_at=timezone.now() - timedelta(seconds=1)
    )

    # When the relay finds it overdue
    outbox_redrive()

    # Then the order is settled safely: rejected with a reason, a release sent, support flagged
    order = Order.objects.get(pk=order_id)
    assert order.status == "rejected"
    assert order.rejection == {"reason": "no_answer_from_catalog", "shortages": []}
    assert order.support_flag == "The catalog never answered the stock reservation."
    assert [p["order_id"] for _, p in outbox_messages("catalog.release_reservation")] == [order_id]
    (row,) = OutboxMessage.objects.filter(task_name="catalog.reserve_stock")
    assert (row.gave_up_at is not None, row.ack_due_at) == (True, None)


def test_a_reserve_the_catalog_dead_lettered_is_settled_at_once(flow):
    from bazaar_common.outbox.models import OutboxMessage
    from bazaar_common.outbox.tasks import message_ack

    order_id = flow.place()
    row = OutboxMessage.objects.get(task_name="catalog.reserve_stock")
    OutboxMessage.objects.filter(pk=row.pk).update(published_at=timezone.now(), ack_due_at=timezone.now())
    ack = contracts.MessageAck(message_id=str(row.pk), task=row.task_name, outcome=contracts.AckOutcome.DEAD_LETTERED)

    message_ack(message_id=str(uuid.uuid4()), payload=ack.to_payload())

    assert Order.objects.get(pk=order_id).status == "rejected"
    row.refresh_from_db()
    assert (row.ack_outcome, row.gave_up_at is not None) == ("dead_lettered", True)


def test_a_malformed_reply_is_dead_lettered_not_raised(flow):
    from bazaar_common.outbox.models import DeadLetter
    from order_service.orders.tasks import stock_rejected

    order_id = flow.place()

    # the reason code is not one the catalog sends
    payload = {"v": 2, "order_id": order_id, "reason": "insufficient_stock", "shortages": []}
    assert stock_rejected(message_id="bad-1", payload=payload) is False

    assert Order.objects.get(pk=order_id).status == "pending"
    (letter,) = DeadLetter.objects.all()
    assert letter.task_name == "orders.stock_rejected"
    assert letter.reason.startswith("reason: Input should be 'out_of_stock'")


def test_previous_version_replies_are_still_accepted(flow):
    from order_service.orders.tasks import stock_reserved

    order_id = flow.place()

    assert stock_reserved(message_id="v1", payload={"order_id": order_id}) is True  # v1 had no "v"
    assert Order.objects.get(pk=order_id).status == "reserved"


# --- The catalog asks about an overdue hold (HoldExpiring) -------------------------------------------


def _hold_expiring(order_id: str) -> bool:
    from order_service.orders.tasks import hold_expiring

    return _deliver(hold_expiring, order_id, contracts.HoldExpiring(order_id=order_id))


def _overdue(order_id: str) -> None:
    Order.objects.filter(pk=order_id).update(payment_due_at=timezone.now() - timedelta(seconds=1))


def test_an_overdue_hold_of_a_paid_order_is_committed_never_released(flow, outbox_messages):
    order_id = flow.place_paid()

    assert _hold_expiring(order_id) is True

    assert Order.objects.get(pk=order_id).status == "paid"
    commits = outbox_messages("catalog.commit_reservation")
    assert [payload for _, payload in commits] == [{"v": 2, "order_id": order_id}] * 2
    assert outbox_messages("catalog.release_reservation") == []
    assert flow.get(order_id)["timeline"][-1]["kind"] == "hold_expiry_commit"
    assert [p["outcome"] for _, p in outbox_messages("outbox.ack")] == ["handled"]


def test_an_overdue_hold_of_an_order_past_its_payment_time_cancels_it_and_releases(flow, outbox_messages):
    order_id = flow.place_reserved()
    _overdue(order_id)

    _hold_expiring(order_id)

    order = flow.get(order_id)
    assert order["status"] == "cancelled"
    assert order["timeline"][-1]["reason"] == "Not paid in time."
    releases = outbox_messages("catalog.release_reservation")
    assert [payload for _, payload in releases] == [{"v": 2, "order_id": order_id, "reason": "Order expired."}]
    assert flow.pay(order_id).status_code == 409


def test_an_overdue_hold_of_an_order_inside_its_payment_window_is_kept(flow, outbox_messages):
    order_id = flow.place_reserved()

    _hold_expiring(order_id)

    assert flow.get(order_id)["status"] == "reserved"
    assert outbox_messages("catalog.release_reservation") == []
    assert outbox_messages("catalog.commit_reservation") == []
    # The customer can still pay, and the payment commits the hold
    assert flow.pay(order_id).status_code == 200
    assert len(outbox_messages("catalog.commit_reservation")) == 1


def test_an_overdue_hold_of_a_cancelled_or_unknown_order_is_released(flow, outbox_messages):
    cancelled = flow.place_reserved()
    assert flow.client.post(f"/api/v1/orders/{cancelled}/cancel", {"reason": "changed my mind"}, format="json")
    unknown = str(uuid.uuid4())
    before = len(outbox_messages("catalog.release_reservation"))

    _hold_expiring(cancelled)
    _hold_expiring(unknown)

    releases = [payload for _, payload in outbox_messages("catalog.release_reservation")][before:]
    assert releases == [
        {"v": 2, "order_id": cancelled, "reason": "Order is cancelled."},
        {"v": 2, "order_id": unknown, "reason": "No such order."},
    ]


class AskedWhileCharging:
    """A provider that charges, but the catalog's question about the hold arrives mid-charge
    (another worker, between the payment's opening and closing transactions)."""

    name = "asked-while-charging"
    question: str = ""
    window_closes: bool = False

    def charge(self, *, idempotency_key, amount, currency, card_token):
        from order_service.orders.payments import SimulatedPaymentProvider

        result = SimulatedPaymentProvider().charge(
            idempotency_key=idempotency_key, amount=amount, currency=currency, card_token=card_token
        )
        if AskedWhileCharging.window_closes:
            _overdue(AskedWhileCharging.question)
        _hold_expiring(AskedWhileCharging.question)
        return result

    def refund(self, *, reference, amount):
        from order_service.orders.payments import SimulatedPaymentProvider

        SimulatedPaymentProvider().refund(reference=reference, amount=amount)


@pytest.mark.parametrize("window_closed", [False, True], ids=["window-open", "window-closed-mid-charge"])
def test_a_payment_and_the_holds_expiry_never_leave_a_paid_order_without_its_stock(
    flow, settings, outbox_messages, window_closed
):
    # Given a reserved order, and the catalog asking about its overdue hold while the payment
    # provider is charging (when the payment window closed meanwhile, too)
    from order_service.orders.models import PaymentAttempt

    order_id = flow.place_reserved()
    settings.PAYMENT_PROVIDER_CLASS = f"{__name__}.AskedWhileCharging"
    AskedWhileCharging.question = order_id
    AskedWhileCharging.window_closes = window_closed

    # When the customer pays
    answer = flow.pay(order_id)

    # Then either the order is paid and its stock committed, never released, or it was cancelled
    # with its stock released and the charge refunded: never paid with its stock given back
    order = Order.objects.get(pk=order_id)
    commits = outbox_messages("catalog.commit_reservation")
    releases = outbox_messages("catalog.release_reservation")
    if window_closed:
        assert answer.status_code == 409
        assert order.status == "cancelled"
        assert (len(commits), len(releases)) == (0, 1)
        assert list(PaymentAttempt.objects.filter(order_id=order_id).values_list("status", flat=True)) == ["refunded"]
    else:
        assert answer.status_code == 200
        assert order.status == "paid"
        assert (len(commits), len(releases)) == (1, 0)
