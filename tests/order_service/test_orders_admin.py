"""The support workplace (Django admin) and the dashboard, through Django's test client."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from django.utils import timezone
from factories import OrderFactory, OrderLineFactory

from order_service.orders.models import Order, OrderStatus, PaymentAttempt, PaymentStatus, SimulatedCharge
from order_service.orders.selectors import dashboard_figures

pytestmark = pytest.mark.django_db
CHANGELIST = "/admin/orders/order/"


def staff_client(*, group: str | None = "support", superuser: bool = False) -> tuple[Client, User]:
    """A signed-in shadow user as the admin sign-in backend keeps them (username = Bazaar id)."""
    user = User.objects.create_user(
        username=str(uuid.uuid4()), email="staff@bazaar.test", is_staff=True, is_superuser=superuser
    )
    if group:
        user.groups.add(Group.objects.get(name=group))
    client = Client()
    client.force_login(user)
    return client, user


def changelist_ids(response) -> set[str]:
    return {str(order.pk) for order in response.context["cl"].result_list}


def test_support_finds_orders_by_id_email_status_and_date():
    client, _ = staff_client()
    alice = OrderFactory(customer_email="alice@example.com", status=OrderStatus.PAID)
    bob = OrderFactory(customer_email="bob@example.com")
    old = OrderFactory(customer_email="old@example.com")
    Order.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=40))
    today = timezone.now().date()

    assert changelist_ids(client.get(CHANGELIST, {"q": str(bob.pk)})) == {str(bob.pk)}
    assert changelist_ids(client.get(CHANGELIST, {"q": "alice@"})) == {str(alice.pk)}
    assert changelist_ids(client.get(CHANGELIST, {"status__exact": "paid"})) == {str(alice.pk)}
    by_day = client.get(
        CHANGELIST,
        {"created_at__year": today.year, "created_at__month": today.month, "created_at__day": today.day},
    )
    assert changelist_ids(by_day) == {str(alice.pk), str(bob.pk)}


def test_the_order_page_shows_lines_and_timeline():
    client, _ = staff_client()
    line = OrderLineFactory(name="Blue teapot")
    line.order.events.create(kind="status", from_status="pending", to_status="reserved", actor="service:catalog")

    response = client.get(f"{CHANGELIST}{line.order.pk}/change/")

    assert response.status_code == 200
    body = response.content.decode()
    assert "Blue teapot" in body
    assert "service:catalog" in body
    assert "Timeline" in body


def test_support_cancels_with_a_reason_recorded_with_who_did_it(outbox_messages):
    client, user = staff_client()
    order = OrderFactory(status=OrderStatus.RESERVED, reserved_at=timezone.now())
    selection = {"action": "cancel_orders", "_selected_action": [str(order.pk)]}

    asked = client.post(CHANGELIST, selection)
    done = client.post(CHANGELIST, {**selection, "apply": "1", "reason": "Customer asked by phone"})

    assert asked.status_code == 200
    assert "reason" in asked.content.decode()
    assert Order.objects.get(pk=order.pk).status == OrderStatus.CANCELLED
    assert done.status_code == 302
    event = order.events.last()
    assert (event.to_status, event.actor, event.reason) == (
        "cancelled",
        user.username,
        "Customer asked by phone",
    )
    assert [p["order_id"] for _, p in outbox_messages("catalog.release_reservation")] == [str(order.pk)]


def test_a_reason_is_required():
    client, _ = staff_client()
    order = OrderFactory(status=OrderStatus.RESERVED)

    response = client.post(
        CHANGELIST,
        {"action": "cancel_orders", "_selected_action": [str(order.pk)], "apply": "1", "reason": ""},
    )

    assert response.status_code == 200
    assert "This field is required." in response.content.decode()
    assert Order.objects.get(pk=order.pk).status == OrderStatus.RESERVED


def paid_order() -> Order:
    order = OrderFactory(status=OrderStatus.PAID, reserved_at=timezone.now(), paid_at=timezone.now())
    charge = SimulatedCharge.objects.create(
        idempotency_key=f"{order.pk}:1",
        reference=f"ch_{order.pk.hex[:12]}",
        amount=order.total,
        currency="EUR",
    )
    PaymentAttempt.objects.create(
        order=order,
        idempotency_key=charge.idempotency_key,
        provider="simulated",
        card_token="tok_success",
        amount=order.total,
        currency="EUR",
        status=PaymentStatus.SUCCEEDED,
        provider_reference=charge.reference,
    )
    return order


def test_support_refunds_a_delivered_order_and_a_paid_one():
    client, user = staff_client()
    delivered = paid_order()
    Order.objects.filter(pk=delivered.pk).update(status=OrderStatus.DELIVERED)
    paid = paid_order()

    client.post(
        CHANGELIST,
        {
            "action": "refund_orders",
            "_selected_action": [str(delivered.pk), str(paid.pk)],
            "apply": "1",
            "reason": "Broken",
        },
    )

    delivered.refresh_from_db()
    paid.refresh_from_db()
    assert (delivered.status, delivered.refunded_amount) == (OrderStatus.DELIVERED, Decimal("20.00"))
    assert (paid.status, paid.refunded_amount) == (OrderStatus.CANCELLED, Decimal("20.00"))
    assert list(SimulatedCharge.objects.values_list("refunded_amount", flat=True)) == [Decimal("20.00")] * 2
    assert delivered.events.last().kind == "refund"
    assert delivered.events.last().actor == user.username


def test_a_refund_that_does_not_apply_is_reported_not_applied():
    client, _ = staff_client()
    order = OrderFactory(status=OrderStatus.PENDING)

    response = client.post(
        CHANGELIST,
        {"action": "refund_orders", "_selected_action": [str(order.pk)], "apply": "1", "reason": "x"},
        follow=True,
    )

    messages = [str(m) for m in response.context["messages"]]
    assert messages == [f"Not done for {order.pk}: An order that is pending has no payment to refund."]
    assert Order.objects.get(pk=order.pk).status == OrderStatus.PENDING


def test_staff_without_the_support_role_cannot_open_orders():
    client, _ = staff_client(group="merchant" if Group.objects.filter(name="merchant").exists() else None)

    assert client.get(CHANGELIST).status_code == 403
    assert client.get("/admin/dashboard/").status_code == 403


def test_dashboard_draws_its_charts_for_support():
    client, _ = staff_client()
    OrderFactory(status=OrderStatus.REJECTED)
    OrderFactory(status=OrderStatus.CANCELLED)
    OrderFactory(status=OrderStatus.PAID, paid_at=timezone.now(), total=Decimal("30.00"))
    OrderFactory(status=OrderStatus.PENDING)

    response = client.get("/admin/dashboard/")

    assert response.status_code == 200
    body = response.content.decode()
    assert body.count('<svg xmlns="http://www.w3.org/2000/svg" role="img"') == 4
    assert "Orders per hour" in body
    assert "Revenue per day" in body
    assert "25.0 %" in body  # one rejected of four; one cancelled of four
    assert "cdn" not in body.lower()  # charts are drawn on the server, nothing loaded from outside


def test_dashboard_links_to_the_platform_prometheus_when_there_is_one(settings):
    client, _ = staff_client()

    settings.PROMETHEUS_URL = ""
    without = client.get("/admin/dashboard/").content.decode()
    settings.PROMETHEUS_URL = "http://127.0.0.1:9090"
    body = client.get("/admin/dashboard/").content.decode()

    assert "platform-metrics" not in without
    assert '<a href="http://127.0.0.1:9090/alerts">Alerts (pending and firing)</a>' in body
    transitions = "g0.expr=sum+by+%28from_state%2C+to_state%29+%28rate%28bazaar_order_transitions_total%5B5m%5D%29%29"
    assert f'<a href="http://127.0.0.1:9090/graph?{transitions}&amp;g0.tab=0&amp;g0.range_input=6h">' in body
    assert body.count('href="http://127.0.0.1:9090/') == 5


def test_dashboard_needs_a_staff_sign_in(client):
    response = client.get("/admin/dashboard/")

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_dashboard_figures():
    now = timezone.now()
    OrderFactory(status=OrderStatus.REJECTED)
    OrderFactory(status=OrderStatus.PAID, paid_at=now, total=Decimal("30.00"))
    OrderFactory(status=OrderStatus.SHIPPED, paid_at=now, total=Decimal("12.50"))
    OrderFactory(status=OrderStatus.CANCELLED, paid_at=now, total=Decimal("99.00"))

    figures = dashboard_figures(now=now)

    assert sum(count for _, count in figures.orders_per_hour) == 4
    assert len(figures.orders_per_hour) == 24
    assert dict(figures.orders_by_status) == {
        "pending": 0,
        "reserved": 0,
        "rejected": 1,
        "paid": 1,
        "shipped": 1,
        "delivered": 0,
        "cancelled": 1,
    }
    assert (figures.rejection_rate, figures.cancellation_rate) == (0.25, 0.25)
    assert figures.revenue_per_day[-1] == (now.date(), Decimal("42.50"))
    assert len(figures.revenue_per_day) == 14
