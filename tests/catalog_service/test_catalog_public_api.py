"""The public catalog API: listing, search, filters, ordering, pagination, parameter validation."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from factories import CategoryFactory, MerchantFactory, ProductFactory

from catalog_service.inventory.services import reservation_reserve

pytestmark = pytest.mark.django_db

LIST = "/api/v1/catalog/products"


def ids(response) -> list[int]:
    return [item["id"] for item in response.json()["results"]]


def test_list_shows_active_products_with_price_stock_merchant_and_category(api_client):
    # given: one active product with a category, and products that must not show
    category = CategoryFactory(name="Kitchen", slug="kitchen")
    merchant = MerchantFactory(name="Acme", slug="acme")
    product = ProductFactory(
        merchant=merchant,
        category=category,
        name="Skillet",
        sku="SK-1",
        price=Decimal("34.90"),
        initial_stock=7,
    )
    ProductFactory(merchant=merchant, is_active=False)
    ProductFactory(merchant=MerchantFactory(is_active=False))

    response = api_client.get(LIST)

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 1
    assert body["page"] == 1
    assert body["page_size"] == 20
    assert body["next"] is None
    assert body["previous"] is None
    item = body["results"][0]
    assert item == {
        "id": product.pk,
        "sku": "SK-1",
        "name": "Skillet",
        "slug": "skillet",
        "price": "34.90",
        "currency": "EUR",
        "available": 7,
        "in_stock": True,
        "image_url": None,
        "merchant": {"id": merchant.pk, "name": "Acme", "slug": "acme"},
        "category": {"id": category.pk, "name": "Kitchen", "slug": "kitchen"},
        "created_at": item["created_at"],
    }


def test_available_is_on_hand_minus_reserved(api_client):
    product = ProductFactory(initial_stock=10)
    reservation_reserve(order_id="o-1", lines=[{"product_id": product.pk, "quantity": 4}])

    response = api_client.get(f"{LIST}/{product.pk}")

    assert response.status_code == 200
    assert response.json()["available"] == 6


def test_search_matches_name_and_description(api_client):
    skillet = ProductFactory(name="Cast Iron Skillet", description="Heavy pan for searing")
    ProductFactory(name="Garden Hose", description="Twenty five metres")
    knife = ProductFactory(name="Chef Knife", description="Cuts through cast iron? No, vegetables.")

    assert sorted(ids(api_client.get(LIST, {"q": "skillet"}))) == [skillet.pk]
    assert sorted(ids(api_client.get(LIST, {"q": "searing"}))) == [skillet.pk]
    assert sorted(ids(api_client.get(LIST, {"q": "cast iron"}))) == sorted([skillet.pk, knife.pk])
    assert ids(api_client.get(LIST, {"q": "trampoline"})) == []


def test_search_ranks_name_matches_first_on_postgres(api_client):
    # On PostgreSQL the name weighs more than the description; elsewhere the order is newest first.
    in_description = ProductFactory(name="Apron", description="Great with a skillet")
    in_name = ProductFactory(name="Skillet Deluxe", description="Heavy")

    result = ids(api_client.get(LIST, {"q": "skillet"}))

    assert sorted(result) == sorted([in_name.pk, in_description.pk])
    if connection.vendor == "postgresql":
        assert result == [in_name.pk, in_description.pk]


@pytest.mark.postgres
def test_search_uses_stemming_on_postgres(api_client):
    knives = ProductFactory(name="Kitchen knives")

    assert ids(api_client.get(LIST, {"q": "kitchens"})) == [knives.pk]


def test_category_filter_includes_descendants(api_client):
    home = CategoryFactory(slug="home")
    kitchen = CategoryFactory(slug="kitchen", parent=home)
    pans = CategoryFactory(slug="pans", parent=kitchen)
    other = CategoryFactory(slug="outdoor")
    in_home = ProductFactory(category=home)
    in_kitchen = ProductFactory(category=kitchen)
    in_pans = ProductFactory(category=pans)
    ProductFactory(category=other)
    ProductFactory(category=None)

    assert sorted(ids(api_client.get(LIST, {"category": home.pk}))) == [in_home.pk, in_kitchen.pk, in_pans.pk]
    assert sorted(ids(api_client.get(LIST, {"category": kitchen.pk}))) == [in_kitchen.pk, in_pans.pk]
    assert ids(api_client.get(LIST, {"category": pans.pk})) == [in_pans.pk]


def test_merchant_filter(api_client):
    acme, other = MerchantFactory(), MerchantFactory()
    mine = ProductFactory(merchant=acme)
    ProductFactory(merchant=other)

    assert ids(api_client.get(LIST, {"merchant": acme.pk})) == [mine.pk]


def test_price_range_filter_is_inclusive(api_client):
    cheap = ProductFactory(price=Decimal("5.00"))
    middle = ProductFactory(price=Decimal("10.00"))
    dear = ProductFactory(price=Decimal("20.00"))

    assert ids(api_client.get(LIST, {"price_min": "10", "ordering": "price"})) == [middle.pk, dear.pk]
    assert ids(api_client.get(LIST, {"price_max": "10.00", "ordering": "price"})) == [cheap.pk, middle.pk]
    assert ids(api_client.get(LIST, {"price_min": "6", "price_max": "19.99"})) == [middle.pk]


def test_in_stock_filter(api_client):
    stocked = ProductFactory(initial_stock=3)
    empty = ProductFactory(initial_stock=0)
    all_reserved = ProductFactory(initial_stock=2)
    reservation_reserve(order_id="o-1", lines=[{"product_id": all_reserved.pk, "quantity": 2}])

    assert ids(api_client.get(LIST, {"in_stock": "true"})) == [stocked.pk]
    assert sorted(ids(api_client.get(LIST, {"in_stock": "false"}))) == sorted([empty.pk, all_reserved.pk])


@pytest.mark.parametrize(
    ("ordering", "expected"),
    [
        ("price", ["b", "c", "a"]),
        ("-price", ["a", "c", "b"]),
        ("name", ["a", "b", "c"]),
        ("-name", ["c", "b", "a"]),
        ("newest", ["c", "b", "a"]),
    ],
)
def test_ordering(api_client, ordering, expected):
    made = {
        "a": ProductFactory(name="Alpha", price=Decimal("30.00")),
        "b": ProductFactory(name="Bravo", price=Decimal("10.00")),
        "c": ProductFactory(name="Charlie", price=Decimal("20.00")),
    }

    response = api_client.get(LIST, {"ordering": ordering})

    assert ids(response) == [made[key].pk for key in expected]


def test_pagination_pages_and_links(api_client):
    products = [ProductFactory(name=f"P{n:02d}") for n in range(5)]

    first = api_client.get(LIST, {"ordering": "name", "page_size": 2})
    last = api_client.get(LIST, {"ordering": "name", "page_size": 2, "page": 3})

    assert first.json()["count"] == 5
    assert ids(first) == [products[0].pk, products[1].pk]
    assert first.json()["next"] == f"{LIST}?ordering=name&page_size=2&page=2"
    assert ids(last) == [products[4].pk]
    assert last.json()["next"] is None
    assert last.json()["previous"] == f"{LIST}?ordering=name&page_size=2&page=2"


def test_page_size_is_capped(api_client):
    response = api_client.get(LIST, {"page_size": 101})

    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"field": "page_size", "reason": "Ensure this value is less than or equal to 100."}
    ]


def test_page_past_the_end_is_400(api_client):
    ProductFactory()

    response = api_client.get(LIST, {"page": 2})

    assert response.status_code == 400
    assert response.json()["errors"] == [{"field": "page", "reason": "This page is past the last page (1)."}]


@pytest.mark.parametrize(
    ("params", "field", "reason"),
    [
        ({"colour": "red"}, "colour", "Unknown query parameter."),
        ({"price_min": "cheap"}, "price_min", "A valid number is required."),
        ({"price_min": "-1"}, "price_min", "Ensure this value is greater than or equal to 0."),
        ({"price_min": "20", "price_max": "10"}, "price_max", "Must not be below price_min."),
        ({"in_stock": "maybe"}, "in_stock", "Must be true or false."),
        ({"ordering": "colour"}, "ordering", '"colour" is not a valid choice.'),
        ({"category": "abc"}, "category", "A valid integer is required."),
        ({"category": "999999"}, "category", "No category with this id."),
        ({"merchant": "999999"}, "merchant", "No merchant with this id."),
        ({"merchant": "9" * 30}, "merchant", f"Ensure this value is less than or equal to {2**63 - 1}."),
        ({"page": "0"}, "page", "Ensure this value is greater than or equal to 1."),
        ({"q": "x" * 201}, "q", "Ensure this field has no more than 200 characters."),
    ],
)
def test_bad_parameters_are_400_naming_the_field(api_client, params, field, reason):
    response = api_client.get(LIST, params)

    assert response.status_code == 400
    body = response.json()
    assert response["Content-Type"] == "application/problem+json"
    assert body["status"] == 400
    assert body["errors"] == [{"field": field, "reason": reason}]


def test_repeated_parameter_is_400(api_client):
    response = api_client.get(f"{LIST}?ordering=price&ordering=name")

    assert response.status_code == 400
    assert response.json()["errors"] == [{"field": "ordering", "reason": "Give this parameter once."}]


def test_detail_and_404s(api_client):
    product = ProductFactory(name="Lamp", attributes={"colour": "red"}, image_urls=["https://img.test/1.png"])
    hidden = ProductFactory(is_active=False)

    ok = api_client.get(f"{LIST}/{product.pk}")
    gone = api_client.get(f"{LIST}/{hidden.pk}")
    missing = api_client.get(f"{LIST}/999999")
    huge = api_client.get(f"{LIST}/{'9' * 30}")

    assert ok.status_code == 200
    assert ok.json()["attributes"] == {"colour": "red"}
    assert ok.json()["image_urls"] == ["https://img.test/1.png"]
    assert ok.json()["image_url"] == "https://img.test/1.png"
    assert gone.status_code == 404
    assert missing.status_code == 404
    assert missing.json()["status"] == 404
    assert huge.status_code == 404


def test_category_tree(api_client):
    home = CategoryFactory(name="Home", slug="home")
    kitchen = CategoryFactory(name="Kitchen", slug="kitchen", parent=home)
    garden = CategoryFactory(name="Garden", slug="garden", parent=home)
    audio = CategoryFactory(name="Audio", slug="audio")

    response = api_client.get("/api/v1/catalog/categories")

    assert response.status_code == 200
    assert response.json() == {
        "results": [
            {"id": audio.pk, "name": "Audio", "slug": "audio", "children": []},
            {
                "id": home.pk,
                "name": "Home",
                "slug": "home",
                "children": [
                    {"id": garden.pk, "name": "Garden", "slug": "garden", "children": []},
                    {"id": kitchen.pk, "name": "Kitchen", "slug": "kitchen", "children": []},
                ],
            },
        ]
    }


def test_public_api_needs_no_token_and_ignores_a_bad_one(api_client):
    ProductFactory()
    api_client.credentials(HTTP_AUTHORIZATION="Bearer not-a-token")

    assert api_client.get(LIST).status_code == 200
