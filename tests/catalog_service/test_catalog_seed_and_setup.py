"""The demo seed, the role groups' permissions, and migrations matching the models."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command

from bazaar_common.demo import DEMO_MERCHANT, DEMO_MERCHANT_SLUG
from catalog_service.inventory.models import Stock
from catalog_service.products.models import Category, Merchant, MerchantMember, Product

pytestmark = pytest.mark.django_db


def test_seed_demo_fills_an_empty_catalog_once(api_client):
    call_command("seed_demo", stdout=StringIO())
    out = StringIO()
    call_command("seed_demo", stdout=out)

    merchant = Merchant.objects.get(slug=DEMO_MERCHANT_SLUG)
    assert merchant.name == "Acme Goods"
    assert MerchantMember.objects.get(merchant=merchant).user_id == DEMO_MERCHANT.user_id
    assert MerchantMember.objects.get(merchant=merchant).role == "owner"
    assert Product.objects.filter(merchant=merchant).count() == 20
    assert Category.objects.count() == 6
    assert not Stock.objects.filter(on_hand=0).exists()
    assert "nothing seeded" in out.getvalue()
    listing = api_client.get("/api/v1/catalog/products", {"page_size": 100})
    assert listing.json()["count"] == 20
    assert all(item["available"] > 0 for item in listing.json()["results"])


def test_demo_merchant_holds_rights_on_the_seeded_products(client_as):
    call_command("seed_demo", stdout=StringIO())

    response = client_as(DEMO_MERCHANT.user_id, ("merchant",)).get(
        "/api/v1/catalog/merchant/products", {"page_size": 100}
    )

    assert response.json()["count"] == 20


def test_role_groups_get_their_model_permissions():
    merchant = set(Group.objects.get(name="merchant").permissions.values_list("codename", flat=True))
    support = set(Group.objects.get(name="support").permissions.values_list("codename", flat=True))

    assert {"view_product", "add_product", "change_product", "adjust_product_stock"} <= merchant
    assert "delete_product" not in merchant
    assert support == {
        "view_product",
        "view_category",
        "view_merchant",
        "view_stock",
        "view_stockmovement",
        "view_reservation",
    }


def test_migrations_match_the_models():
    call_command("makemigrations", "--check", "--dry-run", stdout=StringIO())
