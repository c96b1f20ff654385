"""Payment through the simulated provider: success, decline, timeout, and no double charge."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from order_service.orders.models import Order, PaymentAttempt, SimulatedCharge

pytestmark = pytest.mark.django_db


def test_paying_a_reserved_order_commits_the_reservation(flow, outbox_messages):
    order_id = flow.place_reserved([(1, 2)])

    response = flow.pay(order_id, "tok_success")

    assert response.status_code == 200
    order = response.json()
    assert order["status"] == "paid"
    assert order["paid_at"] is not None
    assert order["timeline"][-1]["from_status"] == "reserved"
    assert order["timeline"][-1]["to_status"] == "paid"
    assert [p for _, p in outbox_messages("catalog.commit_reservation")] == [{"v": 2, "order_id": order_id}]
    charge = SimulatedCharge.objects.get()
    assert (str(charge.amount), charge.currency) == ("20.00", "EUR")


def test_a_declined_payment_leaves_the_order_reserved_and_can_be_retried(flow, outbox_messages):
    order_id = flow.place_reserved()

    declined = flow.pay(order_id, "tok_decline")

    assert declined.status_code == 402
    assert declined.json()["code"] == "card_declined"
    assert declined.json()["title"] == "Payment declined"
    assert flow.get(order_id)["status"] == "reserved"
    assert flow.get(order_id)["timeline"][-1]["kind"] == "payment_declined"
    assert outbox_messages("catalog.commit_reservation") == []
    assert SimulatedCharge.objects.count() == 0

    retried = flow.pay(order_id, "tok_success")

    assert retried.status_code == 200
    assert retried.json()["status"] == "paid"
    assert list(PaymentAttempt.objects.order_by("created_at").values_list("status", flat=True)) == [
        "declined",
        "succeeded",
    ]


def test_a_provider_timeout_is_504_and_leaves_the_order_unchanged(flow):
    order_id = flow.place_reserved()
    before = flow.get(order_id)

    response = flow.pay(order_id, "tok_timeout")

    assert response.status_code == 504
    assert int(response["Retry-After"]) >= 1
    assert response.json()["detail"] == "The payment provider did not answer; nothing changed. Retry the payment."
    assert flow.get(order_id) == before
    assert SimulatedCharge.objects.count() == 0

    retried = flow.pay(order_id, "tok_success")

    assert retried.status_code == 200
    assert SimulatedCharge.objects.count() == 1
    assert PaymentAttempt.objects.count() == 1  # the same attempt, answered at last


def test_a_lost_answer_after_charging_never_charges_twice(flow, outbox_messages):
    order_id = flow.place_reserved()

    lost = flow.pay(order_id, "tok_timeout_after_charge")
    retried = flow.pay(order_id, "tok_success")

    assert lost.status_code == 504
    assert retried.status_code == 200
    assert retried.json()["status"] == "paid"
    assert SimulatedCharge.objects.count() == 1
    attempt = PaymentAttempt.objects.get()
    assert attempt.provider_reference == SimulatedCharge.objects.get().reference
    assert len(outbox_messages("catalog.commit_reservation")) == 1


def test_paying_twice_is_409_and_charges_once(flow):
    order_id = flow.place_reserved()
    flow.pay(order_id, "tok_success")

    again = flow.pay(order_id, "tok_success")

    assert again.status_code == 409
    assert again.json()["detail"] == "An order that is paid cannot be paid."
    assert SimulatedCharge.objects.count() == 1


def test_paying_a_pending_order_is_409(flow):
    order_id = flow.place()

    response = flow.pay(order_id)

    assert response.status_code == 409
    assert response.json()["code"] == "illegal_transition"
    assert SimulatedCharge.objects.count() == 0


def test_paying_after_the_deadline_is_409_and_the_order_is_cancelled(flow, outbox_messages):
    order_id = flow.place_reserved()
    Order.objects.filter(pk=order_id).update(payment_due_at=timezone.now() - timedelta(seconds=1))

    response = flow.pay(order_id)

    assert response.status_code == 409
    assert response.json()["code"] == "payment_window_closed"
    assert flow.get(order_id)["status"] == "cancelled"
    assert [p["order_id"] for _, p in outbox_messages("catalog.release_reservation")] == [order_id]
    assert SimulatedCharge.objects.count() == 0


def test_an_unknown_card_token_is_declined(flow):
    order_id = flow.place_reserved()

    response = flow.pay(order_id, "tok_who_knows")

    assert response.status_code == 402
    assert response.json()["code"] == "invalid_token"


def test_pay_needs_a_card_token(flow):
    order_id = flow.place_reserved()

    response = flow.client.post(f"/api/v1/orders/{order_id}/pay", {}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == [{"field": "card_token", "reason": "This field is required."}]


def test_another_customer_cannot_pay_my_order(flow, client_as):
    order_id = flow.place_reserved()

    response = client_as(None, ("customer",)).post(
        f"/api/v1/orders/{order_id}/pay", {"card_token": "tok_success"}, format="json"
    )

    assert response.status_code == 404
    assert SimulatedCharge.objects.count() == 0
