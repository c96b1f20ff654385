"""The merchant API: own products only, stock adjustments with a reason, guardian grants."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from factories import CategoryFactory, MerchantFactory, ProductFactory, new_user_id

from catalog_service.inventory.models import Stock, StockMovement
from catalog_service.products.models import MerchantMember, Product

pytestmark = pytest.mark.django_db

BASE = "/api/v1/catalog/merchant"
MERCHANT = ("merchant", "customer")


@pytest.fixture
def owner(client_as, owner_id):
    return client_as(owner_id, MERCHANT)


@pytest.fixture
def rival():
    rival_owner = new_user_id()
    return rival_owner, MerchantFactory(owner=rival_owner)


def test_merchant_api_needs_a_token_and_the_merchant_role(api_client, client_as):
    assert api_client.get(f"{BASE}/products").status_code == 401
    response = client_as(new_user_id(), ("customer",)).get(f"{BASE}/products")
    assert response.status_code == 403
    assert response.json()["status"] == 403


def test_owner_creates_a_product_with_initial_stock(owner, merchant, owner_id):
    category = CategoryFactory()

    response = owner.post(
        f"{BASE}/products",
        {
            "sku": "MUG-1",
            "name": "Blue Mug",
            "price": "9.90",
            "category_id": category.pk,
            "initial_stock": 12,
            "attributes": {"colour": "blue"},
            "image_urls": ["https://img.test/mug.png"],
        },
        format="json",
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    product = Product.objects.get(pk=body["id"])
    assert body["merchant_id"] == merchant.pk
    assert body["slug"] == "blue-mug"
    assert body["currency"] == "EUR"
    assert body["price"] == "9.90"
    assert body["stock"] == {"on_hand": 12, "reserved": 0, "available": 12}
    assert body["permissions"] == ["adjust_product_stock", "change_product", "view_product"]
    assert product.attributes == {"colour": "blue"}
    movement = StockMovement.objects.get(product=product)
    assert (movement.delta_on_hand, movement.reason, movement.actor) == (12, "initial", owner_id)


def test_create_validates_fields_and_refuses_unknown_ones(owner, merchant):
    ProductFactory(merchant=merchant, sku="DUP")

    response = owner.post(
        f"{BASE}/products",
        {"sku": "bad sku!", "name": "", "price": "-1", "currency": "XYZ", "status": "x"},
        format="json",
    )
    duplicate = owner.post(f"{BASE}/products", {"sku": "DUP", "name": "Again", "price": "1.00"}, format="json")

    assert response.status_code == 400
    # the unknown field is named together with the invalid ones, in one answer
    errors = response.json()["errors"]
    assert {"field": "status", "reason": "Unknown field."} in errors
    assert {error["field"] for error in errors} == {"sku", "name", "price", "currency", "status"}
    response = owner.post(
        f"{BASE}/products", {"sku": "bad sku!", "name": "", "price": "-1", "currency": "XYZ"}, format="json"
    )
    fields = sorted(error["field"] for error in response.json()["errors"])
    assert fields == ["currency", "name", "price", "sku"]
    assert duplicate.status_code == 400
    assert duplicate.json()["errors"] == [
        {"field": "sku", "reason": "This merchant already has a product with this SKU."}
    ]


def test_list_shows_only_own_products_in_every_state(owner, merchant, rival):
    mine = ProductFactory(merchant=merchant)
    mine_inactive = ProductFactory(merchant=merchant, is_active=False)
    ProductFactory(merchant=rival[1])

    response = owner.get(f"{BASE}/products")

    assert response.status_code == 200
    assert [item["id"] for item in response.json()["results"]] == [mine.pk, mine_inactive.pk]


def test_another_merchants_product_is_404_and_never_changed(owner, rival):
    theirs = ProductFactory(merchant=rival[1], price=Decimal("10.00"), initial_stock=5)

    reads = owner.get(f"{BASE}/products/{theirs.pk}")
    patch = owner.patch(f"{BASE}/products/{theirs.pk}", {"price": "0.01"}, format="json")
    deactivate = owner.post(f"{BASE}/products/{theirs.pk}/deactivate")
    adjust = owner.post(
        f"{BASE}/products/{theirs.pk}/stock-adjustments", {"delta": -5, "reason": "theft"}, format="json"
    )
    ledger = owner.get(f"{BASE}/products/{theirs.pk}/stock-movements")

    assert [r.status_code for r in (reads, patch, deactivate, adjust, ledger)] == [404] * 5
    theirs.refresh_from_db()
    assert (theirs.price, theirs.is_active) == (Decimal("10.00"), True)
    assert Stock.objects.get(product=theirs).on_hand == 5


def test_update_and_deactivate_own_product(owner, merchant):
    product = ProductFactory(merchant=merchant, name="Old", price=Decimal("5.00"))

    patched = owner.patch(f"{BASE}/products/{product.pk}", {"name": "New Name", "price": "6.50"}, format="json")
    deactivated = owner.post(f"{BASE}/products/{product.pk}/deactivate")

    assert patched.status_code == 200
    assert (patched.json()["name"], patched.json()["slug"], patched.json()["price"]) == (
        "New Name",
        "new-name",
        "6.50",
    )
    assert deactivated.status_code == 200
    assert deactivated.json()["is_active"] is False
    product.refresh_from_db()
    assert (product.name, product.price, product.is_active) == ("New Name", Decimal("6.50"), False)


def test_patch_refuses_merchant_and_sku_changes(owner, merchant, rival):
    product = ProductFactory(merchant=merchant)

    response = owner.patch(f"{BASE}/products/{product.pk}", {"merchant_id": rival[1].pk, "sku": "X"}, format="json")

    assert response.status_code == 400
    assert sorted(e["field"] for e in response.json()["errors"]) == ["merchant_id", "sku"]


def test_stock_adjustment_with_reason_writes_the_ledger(owner, merchant, owner_id):
    product = ProductFactory(merchant=merchant, initial_stock=5)

    added = owner.post(
        f"{BASE}/products/{product.pk}/stock-adjustments",
        {"delta": 7, "reason": "delivery 42"},
        format="json",
    )
    too_much = owner.post(
        f"{BASE}/products/{product.pk}/stock-adjustments", {"delta": -13, "reason": "oops"}, format="json"
    )
    no_reason = owner.post(f"{BASE}/products/{product.pk}/stock-adjustments", {"delta": 1}, format="json")
    ledger = owner.get(f"{BASE}/products/{product.pk}/stock-movements")

    assert added.status_code == 200
    assert added.json() == {"on_hand": 12, "reserved": 0, "available": 12}
    assert too_much.status_code == 400
    assert too_much.json()["errors"] == [
        {
            "field": "delta",
            "reason": "On hand would be -1, below the 0 units reserved for orders (on hand 12).",
        }
    ]
    assert no_reason.status_code == 400
    assert no_reason.json()["errors"] == [{"field": "reason", "reason": "This field is required."}]
    entries = ledger.json()["results"]
    assert [(e["delta_on_hand"], e["reason"], e["note"], e["actor"]) for e in entries] == [
        (7, "adjustment", "delivery 42", owner_id),
        (5, "initial", "", "test"),
    ]


def test_manager_gets_rights_on_existing_and_new_products(client_as, owner, merchant):
    existing = ProductFactory(merchant=merchant)
    manager_id = new_user_id()
    added = owner.post(
        f"{BASE}/merchants/{merchant.pk}/members", {"user_id": manager_id, "role": "manager"}, format="json"
    )
    later = ProductFactory(merchant=merchant)
    manager = client_as(manager_id, MERCHANT)

    response = manager.get(f"{BASE}/products")

    assert added.status_code == 201
    assert added.json() == {"merchant_id": merchant.pk, "user_id": manager_id, "role": "manager"}
    assert [item["id"] for item in response.json()["results"]] == [existing.pk, later.pk]
    assert manager.patch(f"{BASE}/products/{later.pk}", {"name": "Managed"}, format="json").status_code == 200


def test_owner_grants_a_colleague_rights_on_some_products_only(client_as, owner, merchant):
    granted, other = ProductFactory(merchant=merchant), ProductFactory(merchant=merchant)
    colleague_id = new_user_id()
    owner.post(
        f"{BASE}/merchants/{merchant.pk}/members",
        {"user_id": colleague_id, "role": "colleague"},
        format="json",
    )
    colleague = client_as(colleague_id, MERCHANT)
    assert colleague.get(f"{BASE}/products").json()["results"] == []

    grant = owner.post(
        f"{BASE}/merchants/{merchant.pk}/grants",
        {"user_id": colleague_id, "product_ids": [granted.pk], "permissions": ["adjust_product_stock"]},
        format="json",
    )

    assert grant.status_code == 201
    assert grant.json() == {
        "user_id": colleague_id,
        "products": [{"product_id": granted.pk, "permissions": ["adjust_product_stock", "view_product"]}],
    }
    assert [p["id"] for p in colleague.get(f"{BASE}/products").json()["results"]] == [granted.pk]
    assert colleague.get(f"{BASE}/products/{other.pk}").status_code == 404
    adjust = colleague.post(
        f"{BASE}/products/{granted.pk}/stock-adjustments", {"delta": 1, "reason": "found one"}, format="json"
    )
    assert adjust.status_code == 200
    change = colleague.patch(f"{BASE}/products/{granted.pk}", {"name": "Mine now"}, format="json")
    assert change.status_code == 403
    assert (
        colleague.post(f"{BASE}/products", {"sku": "C-1", "name": "C", "price": "1.00"}, format="json").status_code
        == 400
    )
    listed = owner.get(f"{BASE}/merchants/{merchant.pk}/grants").json()["results"]
    assert {
        "user_id": colleague_id,
        "product_id": granted.pk,
        "permissions": ["adjust_product_stock", "view_product"],
    } in listed

    revoke = owner.post(
        f"{BASE}/merchants/{merchant.pk}/grants/revoke",
        {
            "user_id": colleague_id,
            "product_ids": [granted.pk],
            "permissions": ["view_product", "adjust_product_stock"],
        },
        format="json",
    )
    assert revoke.status_code == 204
    assert colleague.get(f"{BASE}/products/{granted.pk}").status_code == 404


def test_only_owners_grant_and_only_on_their_merchants_products(client_as, owner, merchant, rival):
    theirs = ProductFactory(merchant=rival[1])
    mine = ProductFactory(merchant=merchant)
    colleague_id = new_user_id()
    owner.post(
        f"{BASE}/merchants/{merchant.pk}/members",
        {"user_id": colleague_id, "role": "colleague"},
        format="json",
    )
    colleague = client_as(colleague_id, MERCHANT)

    foreign = owner.post(
        f"{BASE}/merchants/{merchant.pk}/grants",
        {"user_id": colleague_id, "product_ids": [theirs.pk], "permissions": ["change_product"]},
        format="json",
    )
    other_merchant = owner.post(
        f"{BASE}/merchants/{rival[1].pk}/grants",
        {"user_id": colleague_id, "product_ids": [theirs.pk], "permissions": ["change_product"]},
        format="json",
    )
    by_colleague = colleague.post(
        f"{BASE}/merchants/{merchant.pk}/grants",
        {"user_id": colleague_id, "product_ids": [mine.pk], "permissions": ["change_product"]},
        format="json",
    )
    non_member = owner.post(
        f"{BASE}/merchants/{merchant.pk}/grants",
        {"user_id": new_user_id(), "product_ids": [mine.pk], "permissions": ["change_product"]},
        format="json",
    )

    assert foreign.status_code == 400
    assert foreign.json()["errors"] == [
        {"field": "product_ids", "reason": f"Not products of this merchant: [{theirs.pk}]."}
    ]
    assert other_merchant.status_code == 404
    assert by_colleague.status_code == 403
    assert non_member.status_code == 400
    assert non_member.json()["errors"][0]["field"] == "user_id"


def test_my_merchants(owner, merchant, rival):
    response = owner.get(f"{BASE}/merchants")

    assert response.status_code == 200
    assert response.json() == {
        "count": 1,
        "page": 1,
        "page_size": 20,
        "next": None,
        "previous": None,
        "results": [
            {
                "id": merchant.pk,
                "name": merchant.name,
                "slug": merchant.slug,
                "is_active": True,
                "role": "owner",
            }
        ],
    }


def test_merchant_lists_are_pages_of_the_shared_pagination(owner, merchant):
    listed = owner.get(f"{BASE}/merchants", {"page_size": 1, "page": 1})
    products = owner.get("/api/v1/catalog/products", {"page_size": 1})
    grants = owner.get(f"{BASE}/merchants/{merchant.pk}/grants", {"page": 1})
    past_the_end = owner.get(f"{BASE}/merchants", {"page": 9})
    unknown = owner.get(f"{BASE}/merchants", {"sort": "name"})

    assert (listed.status_code, listed.json()["count"], len(listed.json()["results"])) == (200, 1, 1)
    assert set(products.json()) == set(listed.json())
    # The one envelope of every list, the public product list's included
    assert set(grants.json()) == {"count", "page", "page_size", "next", "previous", "results"}
    assert past_the_end.status_code == 400
    assert past_the_end.json()["errors"] == [{"field": "page", "reason": "This page is past the last page (1)."}]
    assert unknown.json()["errors"] == [{"field": "sort", "reason": "Unknown query parameter."}]


def test_admin_opens_a_merchant_and_sees_every_product(client_as, rival):
    admin = client_as(new_user_id(), ("admin",))
    owner_id = new_user_id()
    ProductFactory(merchant=rival[1])

    created = admin.post(
        f"{BASE}/merchants", {"name": "New Shop", "slug": "new-shop", "owner_id": owner_id}, format="json"
    )
    merchant_refused = client_as(owner_id, MERCHANT).post(
        f"{BASE}/merchants", {"name": "Other", "slug": "other", "owner_id": owner_id}, format="json"
    )

    assert created.status_code == 201
    assert MerchantMember.objects.get(merchant_id=created.json()["id"]).role == "owner"
    assert merchant_refused.status_code == 403
    assert admin.get(f"{BASE}/products").json()["count"] == 1


def test_listing_costs_the_same_number_of_queries_for_one_or_many_products(owner, merchant):
    ProductFactory(merchant=merchant)
    with CaptureQueriesContext(connection) as one:
        owner.get(f"{BASE}/products")
    for _ in range(9):
        ProductFactory(merchant=merchant)
    with CaptureQueriesContext(connection) as ten:
        response = owner.get(f"{BASE}/products")

    assert response.json()["count"] == 10
    assert len(ten) == len(one)
