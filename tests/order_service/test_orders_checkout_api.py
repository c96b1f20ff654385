"""Checkout: price snapshot from the catalog, validation, Idempotency-Key, the saga's first step."""

from __future__ import annotations

import pytest

from bazaar_common.outbox.models import OutboxMessage
from order_service.orders.models import Order

pytestmark = pytest.mark.django_db

ADDRESS = {
    "full_name": "Ada Lovelace",
    "line1": "12 St James's Square",
    "line2": "",
    "city": "London",
    "postal_code": "SW1Y 4JH",
    "region": "",
    "country": "GB",
    "phone": "+442079460000",
}


def test_checkout_takes_prices_from_the_catalog_and_asks_it_to_reserve(customer, customer_id, neighbours):
    neighbours.add_product(7, price="12.50", merchant_id=11)
    neighbours.add_product(3, price="0.99", merchant_id=22)

    response = customer.post(
        "/api/v1/orders",
        {
            "items": [{"product_id": 7, "quantity": 2}, {"product_id": 3, "quantity": 3}],
            "shipping_address": ADDRESS,
        },
        format="json",
    )

    assert response.status_code == 202
    order = response.json()
    assert response["Location"] == f"/api/v1/orders/{order['id']}"
    assert order["status"] == "pending"
    assert order["customer_id"] == customer_id
    assert order["customer_email"] == "buyer@example.com"
    assert order["currency"] == "EUR"
    assert order["totals"] == {"subtotal": "27.97", "total": "27.97", "refunded": "0.00", "currency": "EUR"}
    assert order["lines"] == [
        {
            "product_id": 3,
            "merchant_id": 22,
            "sku": "SKU-3",
            "name": "Product 3",
            "unit_price": "0.99",
            "quantity": 3,
            "currency": "EUR",
            "line_total": "2.97",
            "shipped_at": None,
        },
        {
            "product_id": 7,
            "merchant_id": 11,
            "sku": "SKU-7",
            "name": "Product 7",
            "unit_price": "12.50",
            "quantity": 2,
            "currency": "EUR",
            "line_total": "25.00",
            "shipped_at": None,
        },
    ]
    assert order["shipping_address"] == ADDRESS
    assert [(e["kind"], e["to_status"], e["actor"]) for e in order["timeline"]] == [("created", "pending", customer_id)]
    # The reservation request was written with the order, lines in product order.
    messages = list(OutboxMessage.objects.values_list("task_name", "queue", "payload"))
    assert len(messages) == 1
    task, queue, payload = messages[0]
    assert (task, queue) == ("catalog.reserve_stock", "catalog")
    assert payload["order_id"] == order["id"]
    assert payload["lines"] == [{"product_id": 3, "quantity": 3}, {"product_id": 7, "quantity": 2}]
    assert payload["expires_in_seconds"] > 15 * 60


def test_checkout_from_the_cart_empties_it(customer, neighbours):
    neighbours.add_product(1, price="5.00")
    neighbours.add_product(2, price="1.25")
    customer.post("/api/v1/cart/items", {"product_id": 2, "quantity": 4}, format="json")
    customer.post("/api/v1/cart/items", {"product_id": 1, "quantity": 1}, format="json")

    response = customer.post("/api/v1/orders", {}, format="json")

    assert response.status_code == 202
    assert [(line["product_id"], line["quantity"]) for line in response.json()["lines"]] == [(1, 1), (2, 4)]
    assert response.json()["totals"]["total"] == "10.00"
    assert customer.get("/api/v1/cart").json() == {"items": [], "item_count": 0}


def test_checkout_of_an_empty_cart_is_400(customer, neighbours):
    response = customer.post("/api/v1/orders", {}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == [{"field": "items", "reason": "No items given and the cart is empty."}]
    assert Order.objects.count() == 0


def test_unknown_and_inactive_products_are_400_naming_each_line(customer, neighbours):
    neighbours.add_product(1)
    neighbours.add_product(2, active=False)

    response = customer.post(
        "/api/v1/orders",
        {
            "items": [
                {"product_id": 1, "quantity": 1},
                {"product_id": 2, "quantity": 1},
                {"product_id": 99, "quantity": 1},
            ]
        },
        format="json",
    )

    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"field": "items.1.product_id", "reason": "Product 2 is not for sale."},
        {"field": "items.2.product_id", "reason": "Product 99 does not exist."},
    ]
    assert Order.objects.count() == 0
    assert OutboxMessage.objects.count() == 0


def test_quantities_below_one_and_duplicates_are_400_naming_the_lines(customer, neighbours):
    neighbours.add_product(1)

    response = customer.post(
        "/api/v1/orders",
        {
            "items": [
                {"product_id": 1, "quantity": 1},
                {"product_id": 2, "quantity": 0},
                {"product_id": 3, "quantity": -1},
            ]
        },
        format="json",
    )
    duplicate = customer.post(
        "/api/v1/orders",
        {"items": [{"product_id": 1, "quantity": 1}, {"product_id": 1, "quantity": 2}]},
        format="json",
    )

    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"field": "items.1.quantity", "reason": "Ensure this value is greater than or equal to 1."},
        {"field": "items.2.quantity", "reason": "Ensure this value is greater than or equal to 1."},
    ]
    assert duplicate.status_code == 400
    assert duplicate.json()["errors"] == [{"field": "items.1.product_id", "reason": "Product 1 is already on line 0."}]
    assert Order.objects.count() == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"status": "paid"}, "status"),
        ({"total": "0.01"}, "total"),
        ({"customer_id": "00000000-0000-0000-0000-000000000001"}, "customer_id"),
        ({"lines": []}, "lines"),
    ],
)
def test_fields_a_client_must_not_set_are_refused(customer, neighbours, body, field):
    neighbours.add_product(1)

    response = customer.post("/api/v1/orders", {"items": [{"product_id": 1, "quantity": 1}], **body}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == [{"field": field, "reason": "Unknown field."}]
    assert Order.objects.count() == 0


def test_a_client_price_on_a_line_is_refused(customer, neighbours):
    neighbours.add_product(1, price="50.00")

    response = customer.post(
        "/api/v1/orders", {"items": [{"product_id": 1, "quantity": 1, "unit_price": "0.01"}]}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["errors"] == [{"field": "items.0.unit_price", "reason": "Unknown field."}]


def test_catalog_down_is_503_with_retry_after_and_no_order(customer, neighbours):
    neighbours.take_down("catalog")

    response = customer.post("/api/v1/orders", {"items": [{"product_id": 1, "quantity": 1}]}, format="json")

    assert response.status_code == 503
    assert int(response["Retry-After"]) >= 1
    assert response.json()["title"] == "Service unavailable"
    assert Order.objects.count() == 0
    assert OutboxMessage.objects.count() == 0


def test_catalog_not_registered_at_all_is_503_and_no_order(customer, neighbours):
    neighbours.deregister("catalog")

    response = customer.post("/api/v1/orders", {"items": [{"product_id": 1, "quantity": 1}]}, format="json")

    assert response.status_code == 503
    assert Order.objects.count() == 0


def test_default_shipping_address_from_profiles_is_copied(customer, customer_id, neighbours, flow):
    neighbours.addresses[customer_id] = ADDRESS

    order = flow.checkout([(1, 1)]).json()
    neighbours.addresses[customer_id] = {**ADDRESS, "city": "Manchester"}

    assert order["shipping_address"] == ADDRESS
    assert flow.get(order["id"])["shipping_address"] == ADDRESS  # a copy, not a reference
    assert ("GET", f"/internal/v1/profiles/{customer_id}/default-shipping-address") in neighbours.calls


def test_no_default_address_gives_an_order_without_address(flow):
    response = flow.checkout([(1, 1)])

    assert response.status_code == 202
    assert response.json()["shipping_address"] is None


def test_a_bad_shipping_address_is_400(customer, neighbours):
    neighbours.add_product(1)

    response = customer.post(
        "/api/v1/orders",
        {"items": [{"product_id": 1, "quantity": 1}], "shipping_address": {**ADDRESS, "country": "Britain"}},
        format="json",
    )

    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"field": "shipping_address.country", "reason": "Use an ISO 3166-1 alpha-2 code."}
    ]


def test_idempotency_key_replay_returns_the_same_order(flow):
    first = flow.checkout([(1, 2)], HTTP_IDEMPOTENCY_KEY="checkout-42")
    again = flow.checkout([(1, 2)], HTTP_IDEMPOTENCY_KEY="checkout-42")

    assert first.status_code == 202
    assert again.status_code == 202
    assert again.json()["id"] == first.json()["id"]
    assert again["Idempotent-Replayed"] == "true"
    assert Order.objects.count() == 1
    assert OutboxMessage.objects.filter(task_name="catalog.reserve_stock").count() == 1


def test_idempotency_key_with_another_body_is_422(flow):
    first = flow.checkout([(1, 2)], HTTP_IDEMPOTENCY_KEY="checkout-43")

    other = flow.checkout([(1, 3)], HTTP_IDEMPOTENCY_KEY="checkout-43")

    assert first.status_code == 202
    assert other.status_code == 422
    assert other.json()["detail"] == "This Idempotency-Key was already used with a different request body."
    assert Order.objects.count() == 1


def test_idempotency_keys_are_per_customer(flow, client_as, neighbours):
    flow.checkout([(1, 2)], HTTP_IDEMPOTENCY_KEY="same-key")
    other = client_as(None, ("customer",))

    response = other.post(
        "/api/v1/orders",
        {"items": [{"product_id": 1, "quantity": 5}]},
        format="json",
        HTTP_IDEMPOTENCY_KEY="same-key",
    )

    assert response.status_code == 202
    assert Order.objects.count() == 2


def test_a_failed_checkout_does_not_burn_its_idempotency_key(flow, neighbours):
    neighbours.take_down("catalog")
    down = flow.checkout([(1, 2)], HTTP_IDEMPOTENCY_KEY="retry-me")
    neighbours.deregister("catalog")
    neighbours.register("catalog")

    retried = flow.checkout([(1, 2)], HTTP_IDEMPOTENCY_KEY="retry-me")

    assert down.status_code == 503
    assert retried.status_code == 202
    assert "Idempotent-Replayed" not in retried
    assert Order.objects.count() == 1


def test_checkout_needs_a_customer(api_client, client_as):
    body = {"items": [{"product_id": 1, "quantity": 1}]}
    assert api_client.post("/api/v1/orders", body, format="json").status_code == 401
    assert client_as(None, ("support",)).post("/api/v1/orders", body, format="json").status_code == 403
