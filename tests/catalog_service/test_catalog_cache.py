"""Cached list/detail responses: ETags, 304s, and invalidation when a product or its stock changes."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from factories import CategoryFactory, ProductFactory

from catalog_service.inventory.services import reservation_release, reservation_reserve, stock_adjust
from catalog_service.products import services
from catalog_service.products.models import Product

pytestmark = pytest.mark.django_db

LIST = "/api/v1/catalog/products"


def test_list_carries_an_etag_and_if_none_match_gives_304(api_client):
    ProductFactory()
    first = api_client.get(LIST)
    etag = first["ETag"]

    again = api_client.get(LIST, HTTP_IF_NONE_MATCH=etag)
    weak = api_client.get(LIST, HTTP_IF_NONE_MATCH=f'W/{etag}, "other"')
    stale = api_client.get(LIST, HTTP_IF_NONE_MATCH='"something-else"')

    assert first.status_code == 200
    assert etag.startswith('"')
    assert etag.endswith('"')
    assert again.status_code == 304
    assert again.content == b""
    assert again["ETag"] == etag
    assert weak.status_code == 304
    assert stale.status_code == 200
    assert stale.json() == first.json()


def test_detail_304(api_client):
    product = ProductFactory()
    first = api_client.get(f"{LIST}/{product.pk}")

    again = api_client.get(f"{LIST}/{product.pk}", HTTP_IF_NONE_MATCH=first["ETag"])

    assert first.status_code == 200
    assert again.status_code == 304


def test_second_read_comes_from_the_cache(api_client):
    ProductFactory()
    api_client.get(LIST)

    with CaptureQueriesContext(connection) as queries:
        response = api_client.get(LIST)

    assert response.status_code == 200
    assert len(queries) == 0


def test_price_change_invalidates_list_and_detail(api_client, django_capture_on_commit_callbacks):
    product = ProductFactory(price=Decimal("10.00"))
    list_etag = api_client.get(LIST)["ETag"]
    detail_etag = api_client.get(f"{LIST}/{product.pk}")["ETag"]

    with django_capture_on_commit_callbacks(execute=True):
        services.product_update(product=product, data={"price": Decimal("12.50")})

    listed = api_client.get(LIST, HTTP_IF_NONE_MATCH=list_etag)
    detail = api_client.get(f"{LIST}/{product.pk}", HTTP_IF_NONE_MATCH=detail_etag)
    assert listed.status_code == 200
    assert listed.json()["results"][0]["price"] == "12.50"
    assert detail.status_code == 200
    assert detail.json()["price"] == "12.50"
    assert detail["ETag"] != detail_etag


def test_stock_change_invalidates(api_client, django_capture_on_commit_callbacks):
    product = ProductFactory(initial_stock=5)
    assert api_client.get(f"{LIST}/{product.pk}").json()["available"] == 5
    assert api_client.get(LIST).json()["results"][0]["available"] == 5

    with django_capture_on_commit_callbacks(execute=True):
        stock_adjust(product_id=product.pk, delta=3, actor="test", note="delivery")
    assert api_client.get(f"{LIST}/{product.pk}").json()["available"] == 8
    assert api_client.get(LIST).json()["results"][0]["available"] == 8

    with django_capture_on_commit_callbacks(execute=True):
        reservation_reserve(order_id="o-1", lines=[{"product_id": product.pk, "quantity": 6}])
    assert api_client.get(f"{LIST}/{product.pk}").json()["available"] == 2
    assert api_client.get(LIST).json()["results"][0]["available"] == 2

    with django_capture_on_commit_callbacks(execute=True):
        reservation_release(order_id="o-1", reason="cancelled")
    assert api_client.get(f"{LIST}/{product.pk}").json()["available"] == 8


def test_change_to_one_product_keeps_other_details_cached(api_client, django_capture_on_commit_callbacks):
    changed, untouched = ProductFactory(), ProductFactory()
    api_client.get(f"{LIST}/{untouched.pk}")

    with django_capture_on_commit_callbacks(execute=True):
        services.product_update(product=changed, data={"name": "Renamed"})
    with CaptureQueriesContext(connection) as queries:
        response = api_client.get(f"{LIST}/{untouched.pk}")

    assert response.status_code == 200
    assert len(queries) == 0


def test_deactivation_removes_from_list_and_detail(api_client, django_capture_on_commit_callbacks):
    product = ProductFactory()
    assert api_client.get(LIST).json()["count"] == 1
    assert api_client.get(f"{LIST}/{product.pk}").status_code == 200

    with django_capture_on_commit_callbacks(execute=True):
        services.product_deactivate(product=product)

    assert api_client.get(LIST).json()["count"] == 0
    assert api_client.get(f"{LIST}/{product.pk}").status_code == 404


def test_a_rolled_back_change_invalidates_nothing(api_client, django_capture_on_commit_callbacks):
    product = ProductFactory(price=Decimal("10.00"))
    etag = api_client.get(LIST)["ETag"]

    def change_then_fail() -> None:
        with transaction.atomic():
            services.product_update(product=product, data={"price": Decimal("99.00")})
            raise RuntimeError("abort")

    with django_capture_on_commit_callbacks(execute=True) as callbacks, pytest.raises(RuntimeError):
        change_then_fail()

    assert callbacks == []
    assert Product.objects.get(pk=product.pk).price == Decimal("10.00")
    assert api_client.get(LIST, HTTP_IF_NONE_MATCH=etag).status_code == 304


def test_category_rename_invalidates_tree(api_client, django_capture_on_commit_callbacks):
    category = CategoryFactory(name="Old")
    assert api_client.get("/api/v1/catalog/categories").json()["results"][0]["name"] == "Old"

    with django_capture_on_commit_callbacks(execute=True):
        services.category_create(name="Newer")

    names = [node["name"] for node in api_client.get("/api/v1/catalog/categories").json()["results"]]
    assert names == ["Newer", "Old"]
    assert category.pk


def test_reads_survive_redis_being_down(api_client, settings, caplog):
    ProductFactory(name="Still here")
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
        }
    }

    listed = api_client.get(LIST)
    detail = api_client.get(f"{LIST}/{listed.json()['results'][0]['id']}")

    assert listed.status_code == 200
    assert listed.json()["results"][0]["name"] == "Still here"
    assert detail.status_code == 200
    assert "catalog cache unavailable" in caplog.text
