"""The cart: one per customer, in the order service's database."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def items_of(response) -> list[tuple[int, int]]:
    return [(item["product_id"], item["quantity"]) for item in response.json()["items"]]


def test_empty_cart_for_a_new_customer(customer):
    response = customer.get("/api/v1/cart")

    assert response.status_code == 200
    assert response.json() == {"items": [], "item_count": 0}


def test_add_change_remove_and_empty(customer, neighbours):
    neighbours.add_product(1)
    neighbours.add_product(2)

    added = customer.post("/api/v1/cart/items", {"product_id": 1, "quantity": 2}, format="json")
    assert added.status_code == 201
    assert items_of(added) == [(1, 2)]

    # Adding the same product again adds to its line.
    customer.post("/api/v1/cart/items", {"product_id": 1, "quantity": 1}, format="json")
    second = customer.post("/api/v1/cart/items", {"product_id": 2, "quantity": 5}, format="json")
    assert items_of(second) == [(1, 3), (2, 5)]
    assert second.json()["item_count"] == 8

    changed = customer.patch("/api/v1/cart/items/2", {"quantity": 1}, format="json")
    assert changed.status_code == 200
    assert items_of(changed) == [(1, 3), (2, 1)]

    removed = customer.delete("/api/v1/cart/items/1")
    assert removed.status_code == 204
    assert items_of(customer.get("/api/v1/cart")) == [(2, 1)]

    emptied = customer.delete("/api/v1/cart")
    assert emptied.status_code == 204
    assert customer.get("/api/v1/cart").json() == {"items": [], "item_count": 0}


def test_carts_are_per_customer(client_as, customer, neighbours):
    neighbours.add_product(1)
    customer.post("/api/v1/cart/items", {"product_id": 1, "quantity": 2}, format="json")

    other = client_as(None, ("customer",))

    assert other.get("/api/v1/cart").json() == {"items": [], "item_count": 0}
    assert other.delete("/api/v1/cart/items/1").status_code == 404
    assert items_of(customer.get("/api/v1/cart")) == [(1, 2)]


def test_adding_an_unknown_or_inactive_product_is_400(customer, neighbours):
    neighbours.add_product(2, active=False)

    unknown = customer.post("/api/v1/cart/items", {"product_id": 1, "quantity": 1}, format="json")
    inactive = customer.post("/api/v1/cart/items", {"product_id": 2, "quantity": 1}, format="json")

    assert unknown.status_code == 400
    assert unknown.json()["errors"] == [{"field": "product_id", "reason": "Product 1 does not exist."}]
    assert inactive.status_code == 400
    assert inactive.json()["errors"] == [{"field": "product_id", "reason": "Product 2 is not for sale."}]
    assert customer.get("/api/v1/cart").json()["items"] == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"product_id": 1, "quantity": 0}, "quantity"),
        ({"product_id": 1, "quantity": -3}, "quantity"),
        ({"product_id": 1, "quantity": "many"}, "quantity"),
        ({"product_id": 0, "quantity": 1}, "product_id"),
        ({"quantity": 1}, "product_id"),
        ({"product_id": 1, "quantity": 1, "unit_price": "0.01"}, "unit_price"),
    ],
)
def test_bad_cart_input_is_400_naming_the_field(customer, neighbours, body, field):
    neighbours.add_product(1)

    response = customer.post("/api/v1/cart/items", body, format="json")

    assert response.status_code == 400
    assert [error["field"] for error in response.json()["errors"]] == [field]


def test_changing_a_quantity_below_one_is_400(customer, neighbours):
    neighbours.add_product(1)
    customer.post("/api/v1/cart/items", {"product_id": 1, "quantity": 2}, format="json")

    response = customer.patch("/api/v1/cart/items/1", {"quantity": 0}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"field": "quantity", "reason": "Ensure this value is greater than or equal to 1."}
    ]
    assert items_of(customer.get("/api/v1/cart")) == [(1, 2)]


def test_changing_a_product_not_in_the_cart_is_404(customer):
    response = customer.patch("/api/v1/cart/items/9", {"quantity": 2}, format="json")

    assert response.status_code == 404
    assert response.json()["detail"] == "Product 9 is not in the cart."


def test_cart_needs_a_customer_token(api_client, client_as):
    assert api_client.get("/api/v1/cart").status_code == 401
    assert client_as(None, ("merchant",)).get("/api/v1/cart").status_code == 403


def test_adding_to_the_cart_while_the_catalog_is_down_is_503(customer, neighbours):
    neighbours.take_down("catalog")

    response = customer.post("/api/v1/cart/items", {"product_id": 1, "quantity": 1}, format="json")

    assert response.status_code == 503
    assert int(response["Retry-After"]) >= 1  # the value is the service client's to choose
    assert response.json()["status"] == 503
    assert customer.get("/api/v1/cart").json()["items"] == []
