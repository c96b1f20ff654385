"""Internal endpoints: service tokens only."""

from __future__ import annotations

from decimal import Decimal

import pytest
from factories import MerchantFactory, ProductFactory, new_user_id

from catalog_service.inventory.services import reservation_reserve

pytestmark = pytest.mark.django_db

PRODUCTS = "/internal/v1/catalog/products"


def test_prices_and_availability_by_ids(service_client):
    merchant = MerchantFactory()
    product = ProductFactory(merchant=merchant, sku="A-1", name="Alpha", price=Decimal("12.50"), initial_stock=5)
    inactive = ProductFactory(merchant=merchant, sku="B-1", name="Beta", is_active=False, initial_stock=0)
    reservation_reserve(order_id="o-1", lines=[{"product_id": product.pk, "quantity": 2}])

    response = service_client.get(PRODUCTS, {"ids": f"{product.pk},{inactive.pk},999999,{product.pk}"})

    assert response.status_code == 200
    assert response.json() == {
        "results": [
            {
                "id": product.pk,
                "merchant_id": merchant.pk,
                "sku": "A-1",
                "name": "Alpha",
                "price": "12.50",
                "currency": "EUR",
                "is_active": True,
                "available": 3,
            },
            {
                "id": inactive.pk,
                "merchant_id": merchant.pk,
                "sku": "B-1",
                "name": "Beta",
                "price": "10.00",
                "currency": "EUR",
                "is_active": False,
                "available": 0,
            },
        ],
        "missing": [999999],
    }


def test_products_of_an_inactive_merchant_are_reported_inactive(service_client):
    product = ProductFactory(merchant=MerchantFactory(is_active=False))

    response = service_client.get(PRODUCTS, {"ids": str(product.pk)})

    assert response.json()["results"][0]["is_active"] is False


@pytest.mark.parametrize("ids", ["", "a,b", "1,,2", "-1", "1;2", "0", "9" * 30])
def test_bad_ids_are_400(service_client, ids):
    response = service_client.get(PRODUCTS, {"ids": ids})

    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "ids"


def test_ids_are_required(service_client):
    response = service_client.get(PRODUCTS)

    assert response.status_code == 400
    assert response.json()["errors"] == [{"field": "ids", "reason": "This field is required."}]


def test_user_tokens_are_refused(client_as, api_client):
    product = ProductFactory()

    as_admin = client_as(new_user_id(), ("admin",)).get(PRODUCTS, {"ids": str(product.pk)})
    anonymous = api_client.get(PRODUCTS, {"ids": str(product.pk)})

    assert as_admin.status_code == 403
    assert anonymous.status_code == 401


def test_merchants_of_a_user(service_client, client_as):
    user_id = new_user_id()
    first, second = MerchantFactory(owner=user_id), MerchantFactory(owner=new_user_id())
    MerchantFactory(owner=new_user_id())
    from catalog_service.products.services import merchant_member_add

    merchant_member_add(merchant=second, user_id=user_id, role="colleague")

    response = service_client.get(f"/internal/v1/catalog/users/{user_id}/merchants")
    nobody = service_client.get(f"/internal/v1/catalog/users/{new_user_id()}/merchants")
    refused = client_as(user_id, ("merchant",)).get(f"/internal/v1/catalog/users/{user_id}/merchants")

    assert response.status_code == 200
    assert response.json() == {"merchant_ids": sorted([first.pk, second.pk])}
    assert nobody.json() == {"merchant_ids": []}
    assert refused.status_code == 403


RESERVATIONS = "/internal/v1/catalog/reservations"


def test_reservations_by_order_id_and_held_idle_ones(service_client):
    from datetime import timedelta

    from django.utils import timezone

    from catalog_service.inventory.models import Reservation
    from catalog_service.inventory.services import reservation_release

    product = ProductFactory(initial_stock=5)
    reservation_reserve(order_id="held-old", lines=[{"product_id": product.pk, "quantity": 1}])
    reservation_reserve(order_id="held-new", lines=[{"product_id": product.pk, "quantity": 1}])
    reservation_release(order_id="gone", reason="cancelled")
    Reservation.objects.filter(order_id="held-old").update(updated_at=timezone.now() - timedelta(minutes=10))

    by_id = service_client.get(RESERVATIONS, {"order_ids": "held-new,gone,unknown"})
    idle = service_client.get(RESERVATIONS, {"held_idle_seconds": "300"})
    neither = service_client.get(RESERVATIONS)

    assert by_id.status_code == 200
    assert by_id.json() == {
        "results": [
            {"order_id": "gone", "status": "released", "release_reason": "cancelled"},
            {"order_id": "held-new", "status": "held", "release_reason": ""},
        ]
    }
    assert idle.json() == {"results": [{"order_id": "held-old", "status": "held", "release_reason": ""}]}
    assert neither.status_code == 400
    assert neither.json()["errors"][0]["field"] == "order_ids"
