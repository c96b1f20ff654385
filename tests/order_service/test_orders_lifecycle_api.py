"""Cancellation, shipping, delivery, illegal transitions, and the expiry of unpaid orders."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone
from factories import MERCHANT_A, MERCHANT_B

from order_service.orders.models import Order, SimulatedCharge
from order_service.orders.state_machine import ALLOWED_TRANSITIONS

pytestmark = pytest.mark.django_db


def cancel(client, order_id, reason="changed my mind"):
    return client.post(f"/api/v1/orders/{order_id}/cancel", {"reason": reason}, format="json")


@pytest.mark.parametrize("stage", ["pending", "reserved"])
def test_customer_cancels_before_payment_and_stock_is_released(flow, outbox_messages, stage):
    order_id = flow.place() if stage == "pending" else flow.place_reserved()

    response = cancel(flow.client, order_id)

    assert response.status_code == 200
    order = response.json()
    assert order["status"] == "cancelled"
    assert order["timeline"][-1]["from_status"] == stage
    assert order["timeline"][-1]["reason"] == "changed my mind"
    assert order["timeline"][-1]["actor"] == order["customer_id"]
    assert [p for _, p in outbox_messages("catalog.release_reservation")] == [
        {"v": 2, "order_id": order_id, "reason": "Order cancelled: changed my mind"}
    ]


def test_cancelling_a_paid_order_refunds_it_and_releases_stock(flow, outbox_messages):
    order_id = flow.place_paid()

    response = cancel(flow.client, order_id)

    assert response.status_code == 200
    order = response.json()
    assert order["status"] == "cancelled"
    assert order["totals"]["refunded"] == "20.00"
    assert [e["kind"] for e in order["timeline"]][-2:] == ["status", "refund"]
    assert SimulatedCharge.objects.get().refunded_amount == order_total(order_id)
    assert len(outbox_messages("catalog.release_reservation")) == 1


def order_total(order_id):
    return Order.objects.get(pk=order_id).total


def test_cancelling_twice_is_409(flow):
    order_id = flow.place()
    cancel(flow.client, order_id)

    again = cancel(flow.client, order_id)

    assert again.status_code == 409
    assert again.json()["detail"] == "An order that is cancelled cannot become cancelled."


def test_merchants_ship_their_own_lines_and_the_order_ships_with_the_last(flow, neighbours, client_as, outbox_messages):
    neighbours.add_product(1, merchant_id=MERCHANT_A)
    neighbours.add_product(2, merchant_id=MERCHANT_B)
    order_id = flow.place_paid([(1, 1), (2, 1)])
    merchant_a, merchant_b = "8a0f0a0a-0000-4000-8000-00000000000a", "8a0f0a0a-0000-4000-8000-00000000000b"
    neighbours.merchants_of_user.update({merchant_a: [MERCHANT_A], merchant_b: [MERCHANT_B]})

    first = client_as(merchant_a, ("merchant",)).post(f"/api/v1/orders/{order_id}/ship")
    again = client_as(merchant_a, ("merchant",)).post(f"/api/v1/orders/{order_id}/ship")

    assert first.status_code == 200
    assert first.json()["status"] == "paid"
    assert [(line["product_id"], line["shipped_at"] is not None) for line in first.json()["lines"]] == [(1, True)]
    assert again.status_code == 409

    last = client_as(merchant_b, ("merchant",)).post(f"/api/v1/orders/{order_id}/ship")

    assert last.status_code == 200
    assert last.json()["status"] == "shipped"
    assert last.json()["timeline"][-1]["actor"] == merchant_b


def test_support_marks_a_shipped_order_delivered(flow, client_as):
    order_id = flow.place_paid()
    admin = client_as(None, ("admin",))
    admin.post(f"/api/v1/orders/{order_id}/ship")

    response = client_as(None, ("support",)).post(f"/api/v1/orders/{order_id}/deliver")

    assert response.status_code == 200
    assert response.json()["status"] == "delivered"
    assert cancel(admin, order_id).status_code == 409


@pytest.mark.parametrize(
    ("setup", "action", "expected_detail"),
    [
        ("pending", "ship", "Lines of an order that is pending cannot be shipped."),
        ("reserved", "deliver", "An order that is reserved cannot become delivered."),
        ("paid", "deliver", "An order that is paid cannot become delivered."),
        ("rejected", "cancel", "An order that is rejected cannot become cancelled."),
    ],
)
def test_illegal_transitions_are_409(flow, client_as, setup, action, expected_detail):
    if setup == "pending":
        order_id = flow.place()
    elif setup == "reserved":
        order_id = flow.place_reserved()
    elif setup == "paid":
        order_id = flow.place_paid()
    else:
        order_id = flow.place()
        flow.reply_rejected(order_id, [])
    before = Order.objects.get(pk=order_id).status

    response = client_as(None, ("admin",)).post(f"/api/v1/orders/{order_id}/{action}", {}, format="json")

    assert response.status_code == 409
    assert response.json()["detail"] == expected_detail
    assert Order.objects.get(pk=order_id).status == before


def test_the_state_machine_has_no_way_back():
    assert {
        "pending": {"reserved", "rejected", "cancelled"},
        "reserved": {"paid", "cancelled"},
        "paid": {"shipped", "cancelled"},
        "shipped": {"delivered"},
        "delivered": set(),
        "rejected": set(),
        "cancelled": set(),
    } == ALLOWED_TRANSITIONS


def test_the_expiry_task_cancels_unpaid_orders_and_releases_their_stock(flow, outbox_messages, settings):
    from order_service.orders.tasks import expire_unpaid

    overdue = flow.place_reserved()
    in_time = flow.place_reserved()
    paid = flow.place_paid()
    stuck_pending = flow.place()
    fresh_pending = flow.place()
    past = timezone.now() - timedelta(seconds=1)
    Order.objects.filter(pk__in=[overdue, paid]).update(payment_due_at=past)
    Order.objects.filter(pk=stuck_pending).update(
        created_at=timezone.now() - timedelta(seconds=settings.ORDER_PENDING_TIMEOUT_SECONDS + 1)
    )

    assert expire_unpaid() == 2
    assert expire_unpaid() == 0

    statuses = dict(Order.objects.values_list("pk", "status"))
    assert {str(k): v for k, v in statuses.items()} == {
        overdue: "cancelled",
        in_time: "reserved",
        paid: "paid",
        stuck_pending: "cancelled",
        fresh_pending: "pending",
    }
    assert sorted(p["order_id"] for _, p in outbox_messages("catalog.release_reservation")) == sorted(
        [overdue, stuck_pending]
    )
    assert Order.objects.get(pk=overdue).events.last().actor == "system:expiry"


def test_the_expiry_task_is_on_the_beat_schedule(settings):
    assert settings.CELERY_BEAT_SCHEDULE["orders-expire-unpaid"]["task"] == "orders.expire_unpaid"


def test_merchants_see_an_opaque_buyer_and_customers_never_see_staff_ids(
    flow, neighbours, client_as, customer, customer_id
):
    # Given a paid order whose line a merchant's staff member ships
    neighbours.add_product(1, merchant_id=MERCHANT_A)
    order_id = flow.place_paid([(1, 1)])
    staff_member = "8a0f0a0a-0000-4000-8000-0000000000aa"
    neighbours.merchants_of_user.update({staff_member: [MERCHANT_A]})
    merchant_view = client_as(staff_member, ("merchant",)).post(f"/api/v1/orders/{order_id}/ship").json()

    # Then the merchant sees a buyer reference, never the buyer's user id
    assert merchant_view["customer_id"] is None
    assert merchant_view["buyer_reference"].startswith("buyer_")
    assert customer_id not in json.dumps(merchant_view)
    assert merchant_view["timeline"][0]["actor"] == "customer"
    # And the customer sees who acted by role, never the staff member's id
    customer_view = customer.get(f"/api/v1/orders/{order_id}").json()
    assert customer_view["buyer_reference"] == merchant_view["buyer_reference"]
    assert customer_view["timeline"][-1]["actor"] == "staff"
    assert staff_member not in json.dumps(customer_view)
