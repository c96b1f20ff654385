"""Who sees which order: customers their own, merchants theirs (trimmed), support and admin all."""

from __future__ import annotations

import uuid

import pytest
from factories import MERCHANT_A, MERCHANT_B

pytestmark = pytest.mark.django_db

MERCHANT_USER = "6d6f6f6f-0000-4000-8000-0000000000aa"


def ids(response) -> set[str]:
    return {order["id"] for order in response.json()["results"]}


def test_customers_list_and_read_only_their_own_orders(flow, client_as, neighbours):
    mine = flow.place()
    other_client = client_as(None, ("customer",))
    theirs = other_client.post("/api/v1/orders", {"items": [{"product_id": 1, "quantity": 1}]}, format="json").json()[
        "id"
    ]

    listed = flow.client.get("/api/v1/orders")

    assert listed.status_code == 200
    assert listed.json()["count"] == 1
    assert ids(listed) == {mine}
    assert flow.client.get(f"/api/v1/orders/{theirs}").status_code == 404
    assert flow.client.get(f"/api/v1/orders/{uuid.uuid4()}").status_code == 404
    assert flow.client.post(f"/api/v1/orders/{theirs}/cancel", {}, format="json").status_code == 404


def test_another_customers_order_is_404_with_a_problem_body(flow, client_as):
    order_id = flow.place()

    response = client_as(None, ("customer",)).get(f"/api/v1/orders/{order_id}")

    assert response.status_code == 404
    assert response.json() == {
        "type": "about:blank",
        "title": "Not found",
        "status": 404,
        "detail": "Order not found.",
        "code": "not_found",
    }


def test_list_filters_by_status_and_rejects_a_bad_one(flow):
    pending = flow.place()
    reserved = flow.place_reserved([(2, 1)])

    assert ids(flow.client.get("/api/v1/orders?status=reserved")) == {reserved}
    assert ids(flow.client.get("/api/v1/orders?status=pending")) == {pending}
    bad = flow.client.get("/api/v1/orders?status=lost")
    assert bad.status_code == 400
    assert bad.json()["errors"] == [{"field": "status", "reason": '"lost" is not a valid choice.'}]


def test_merchants_see_orders_with_their_products_and_only_their_lines(flow, neighbours, client_as):
    neighbours.add_product(1, merchant_id=MERCHANT_A)
    neighbours.add_product(2, merchant_id=MERCHANT_B)
    both = flow.place([(1, 1), (2, 1)])
    only_b = flow.place([(2, 3)])
    neighbours.merchants_of_user[MERCHANT_USER] = [MERCHANT_A]
    merchant = client_as(MERCHANT_USER, ("merchant",))

    listed = merchant.get("/api/v1/orders")
    detail = merchant.get(f"/api/v1/orders/{both}")

    assert ids(listed) == {both}
    assert detail.status_code == 200
    assert [line["product_id"] for line in detail.json()["lines"]] == [1]
    assert detail.json()["customer_email"] is None
    assert merchant.get(f"/api/v1/orders/{only_b}").status_code == 404
    assert merchant.post(f"/api/v1/orders/{both}/cancel", {}, format="json").status_code == 403


def test_merchant_ids_are_cached_briefly(flow, neighbours, client_as):
    neighbours.merchants_of_user[MERCHANT_USER] = [MERCHANT_A]
    merchant = client_as(MERCHANT_USER, ("merchant",))

    merchant.get("/api/v1/orders")
    merchant.get("/api/v1/orders")

    path = f"/internal/v1/catalog/users/{MERCHANT_USER}/merchants"
    assert neighbours.calls.count(("GET", path)) == 1


@pytest.mark.parametrize("role", ["support", "admin"])
def test_support_and_admin_see_every_order(flow, client_as, role):
    first = flow.place()
    second = (
        client_as(None, ("customer",))
        .post("/api/v1/orders", {"items": [{"product_id": 1, "quantity": 1}]}, format="json")
        .json()["id"]
    )
    staff = client_as(None, (role,))

    assert ids(staff.get("/api/v1/orders")) == {first, second}
    detail = staff.get(f"/api/v1/orders/{first}")
    assert detail.status_code == 200
    assert detail.json()["customer_email"] == "buyer@example.com"


def test_support_can_cancel_any_order(flow, client_as):
    order_id = flow.place_reserved()
    support_id = str(uuid.uuid4())

    response = client_as(support_id, ("support",)).post(
        f"/api/v1/orders/{order_id}/cancel", {"reason": "customer called"}, format="json"
    )

    assert response.status_code == 200
    assert response.json()["timeline"][-1]["actor"] == support_id


def test_orders_need_a_token(api_client):
    assert api_client.get("/api/v1/orders").status_code == 401


def test_internal_orders_of_a_customer_for_services_only(flow, customer_id, client_as):
    order_id = flow.place()
    flow.place_reserved([(2, 1)])
    service = client_as("service:profiles", ("service",))

    response = service.get(f"/internal/v1/orders?customer_id={customer_id}")

    assert response.status_code == 200
    results = response.json()["results"]
    assert [order["status"] for order in results] == ["pending", "reserved"]
    assert results[0]["id"] == order_id
    assert results[0]["customer_email"] == "buyer@example.com"
    assert set(results[0]) >= {"lines", "totals", "timeline", "shipping_address", "status"}
    assert client_as(None, ("admin",)).get(f"/internal/v1/orders?customer_id={customer_id}").status_code == 403
    bad = service.get("/internal/v1/orders?customer_id=nope")
    assert bad.status_code == 400
    assert bad.json()["errors"] == [{"field": "customer_id", "reason": "Must be a valid UUID."}]
