"""The saga's consumers apply the catalog's answers once, whatever is redelivered or late."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

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
    assert order["rejection"] == {"reason": "insufficient_stock", "shortages": shortages}
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
