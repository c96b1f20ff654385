"""The catalog's internal endpoints agree with their contracts (bazaar_common.contracts.http) and
with the queries the order service builds: prices for checkout, reservations for reconciliation,
the merchants of a user."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from factories import MerchantFactory, ProductFactory, new_user_id

from bazaar_common.contracts import http as internal
from bazaar_devtools.contract_checks import answer_is_the_contract, contract_paths, internal_routes
from catalog_service.inventory.models import Reservation
from catalog_service.inventory.services import reservation_release, reservation_reserve

pytestmark = pytest.mark.django_db


def test_every_internal_route_of_the_catalog_has_a_contract():
    assert internal_routes() == contract_paths("catalog")


def test_the_products_query_orders_builds_gets_snapshots_of_the_contract(service_client):
    product = ProductFactory(sku="T-1", name="Teapot", price=Decimal("7.5"), initial_stock=4)
    query = internal.ProductsQuery(ids=[product.pk, 999_999])

    response = service_client.get(internal.CATALOG_PRODUCTS.path, query.to_query())

    assert answer_is_the_contract(internal.CATALOG_PRODUCTS, response) == internal.CatalogProducts(
        results=[
            internal.ProductSnapshot(
                id=product.pk,
                merchant_id=product.merchant_id,
                sku="T-1",
                name="Teapot",
                price=Decimal("7.50"),
                currency="EUR",
                is_active=True,
                available=4,
            )
        ],
        missing=[999_999],
    )
    assert response.json()["results"][0]["price"] == "7.50"


def test_the_reservation_queries_orders_builds_get_states_of_the_contract(service_client):
    product = ProductFactory(initial_stock=5)
    reservation_reserve(order_id="o-held", lines=[{"product_id": product.pk, "quantity": 1}])
    reservation_release(order_id="o-gone", reason="Order cancelled.")
    Reservation.objects.filter(order_id="o-held").update(updated_at=timezone.now() - timedelta(minutes=10))

    by_id = service_client.get(
        internal.CATALOG_RESERVATIONS.path, internal.ReservationsQuery(order_ids=["o-held", "o-gone"]).to_query()
    )
    idle = service_client.get(
        internal.CATALOG_RESERVATIONS.path, internal.ReservationsQuery(held_idle_seconds=300).to_query()
    )

    held = internal.ReservationState(order_id="o-held", status=internal.ReservationStatus.HELD, release_reason="")
    gone = internal.ReservationState(
        order_id="o-gone", status=internal.ReservationStatus.RELEASED, release_reason="Order cancelled."
    )
    assert answer_is_the_contract(internal.CATALOG_RESERVATIONS, by_id) == internal.Reservations(results=[gone, held])
    assert answer_is_the_contract(internal.CATALOG_RESERVATIONS, idle) == internal.Reservations(results=[held])


def test_every_reservation_status_the_catalog_stores_is_one_the_contract_knows():
    assert {status.value for status in Reservation.Status} == {status.value for status in internal.ReservationStatus}


def test_the_merchants_of_a_user_are_answered_as_the_contract(service_client):
    user_id = new_user_id()
    merchant = MerchantFactory(owner=user_id)

    response = service_client.get(internal.CATALOG_USER_MERCHANTS.url(user_id=user_id))

    assert answer_is_the_contract(internal.CATALOG_USER_MERCHANTS, response) == internal.UserMerchants(
        merchant_ids=[merchant.pk]
    )


def test_the_largest_query_the_contract_allows_is_accepted(service_client):
    ids = list(range(1, internal.MAX_IDS + 1))
    order_ids = [f"{i:064d}" for i in range(internal.MAX_IDS)]

    products = service_client.get(internal.CATALOG_PRODUCTS.path, internal.ProductsQuery(ids=ids).to_query())
    reservations = service_client.get(
        internal.CATALOG_RESERVATIONS.path, internal.ReservationsQuery(order_ids=order_ids).to_query()
    )

    assert answer_is_the_contract(internal.CATALOG_PRODUCTS, products).missing == ids
    assert answer_is_the_contract(internal.CATALOG_RESERVATIONS, reservations).results == []
