"""Business limits (issue 11): units per line and per order however the order is built, unpaid
holds per customer and product, and no order whose total is not positive."""

from __future__ import annotations

import pytest

from bazaar_common.outbox.models import OutboxMessage
from order_service.orders.models import Order

pytestmark = pytest.mark.django_db


def checkout(client, items=None):
    body = {} if items is None else {"items": [{"product_id": pid, "quantity": qty} for pid, qty in items]}
    return client.post("/api/v1/orders", body, format="json")


def test_a_line_above_the_line_cap_is_400_naming_it(customer, neighbours):
    neighbours.add_product(1)

    response = checkout(customer, [(1, 1001)])

    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"field": "items.0.quantity", "reason": "Ensure this value is less than or equal to 1000."}
    ]
    assert Order.objects.count() == 0


def test_an_order_above_the_unit_cap_is_400_though_every_line_is_within_its_own(customer, neighbours):
    for product_id in range(1, 7):
        neighbours.add_product(product_id)

    response = checkout(customer, [(product_id, 1000) for product_id in range(1, 7)])

    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"field": "items", "reason": "6000 units in one order; at most 5000 per order."}
    ]
    assert Order.objects.count() == 0


def test_the_cart_never_holds_a_line_above_the_cap_however_it_is_built(customer, neighbours):
    neighbours.add_product(1)
    assert customer.post("/api/v1/cart/items", {"product_id": 1, "quantity": 600}, format="json").status_code == 201

    added = customer.post("/api/v1/cart/items", {"product_id": 1, "quantity": 600}, format="json")
    updated = customer.patch("/api/v1/cart/items/1", {"quantity": 1001}, format="json")

    assert added.status_code == 400
    assert added.json()["errors"] == [{"field": "quantity", "reason": "1200 units in one line; at most 1000 per line."}]
    assert updated.status_code == 400
    assert customer.get("/api/v1/cart").json()["item_count"] == 600


def test_an_order_from_the_cart_is_held_to_the_order_cap(customer, neighbours, settings):
    settings.ORDER_MAX_UNITS = 10
    neighbours.add_product(1)
    neighbours.add_product(2)
    for product_id in (1, 2):
        customer.post("/api/v1/cart/items", {"product_id": product_id, "quantity": 6}, format="json")

    response = checkout(customer)

    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"field": "cart.items", "reason": "12 units in one order; at most 10 per order."}
    ]
    assert Order.objects.count() == 0
    assert customer.get("/api/v1/cart").json()["item_count"] == 12  # kept for the customer to fix


@pytest.mark.parametrize("price", ["0.00", "-5.00"])
def test_an_order_whose_total_is_not_positive_is_refused(customer, neighbours, price):
    neighbours.add_product(1, price=price)

    response = checkout(customer, [(1, 2)])

    assert response.status_code == 400
    total = "0.00" if price == "0.00" else "-10.00"
    assert response.json()["errors"] == [
        {"field": "items", "reason": f"The order total would be {total}; it must be positive."}
    ]
    assert Order.objects.count() == 0
    assert OutboxMessage.objects.count() == 0


def test_unpaid_holds_of_one_customer_are_capped_per_product_until_paid_or_cancelled(flow, neighbours, settings):
    # Given a cap of 5 unpaid units per product and an open order of 3
    settings.ORDER_MAX_UNPAID_UNITS_PER_PRODUCT = 5
    neighbours.add_product(1)
    neighbours.add_product(2)
    first = flow.place([(1, 3)])

    # When the customer orders 3 more of that product (and, in one order, of another)
    again = flow.checkout([(1, 3)])
    mixed = flow.checkout([(2, 1), (1, 3)])

    # Then both are refused naming the product, while other products and other customers are free
    assert again.status_code == 409
    assert again.json()["detail"] == (
        "Unpaid orders would hold more than 5 units of product(s) 1; pay or cancel an open order first."
    )
    assert mixed.status_code == 409
    assert flow.checkout([(2, 5)]).status_code == 202
    assert flow.checkout([(1, 2)]).status_code == 202  # 3 + 2 = 5: at the cap, not over it
    assert Order.objects.count() == 3
    # and once the open order is cancelled its units no longer count
    cancelled = flow.client.post(f"/api/v1/orders/{first}/cancel", {"reason": "changed my mind"}, format="json")
    assert cancelled.status_code == 200, cancelled.json()
    assert flow.checkout([(1, 3)]).status_code == 202
