"""The catalog admin as the merchants' workplace, driven through Django's test client."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from factories import CategoryFactory, MerchantFactory, ProductFactory, new_user_id

from catalog_service.inventory.models import Stock, StockMovement
from catalog_service.inventory.services import reservation_reserve
from catalog_service.products.models import Product

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/products/product/"


@pytest.fixture
def merchant_admin(client, shadow_staff, owner_id, merchant):
    client.force_login(shadow_staff(owner_id, "merchant"))
    return client


@pytest.fixture
def rival_product():
    return ProductFactory(merchant=MerchantFactory(owner=new_user_id()), name="Rival Lamp", price=Decimal("10.00"))


def listed(response) -> list[int]:
    return sorted(obj.pk for obj in response.context["cl"].result_list)


def test_merchant_sees_only_own_products(merchant_admin, merchant, rival_product):
    mine = ProductFactory(merchant=merchant, name="My Mug")

    response = merchant_admin.get(CHANGELIST)

    assert response.status_code == 200
    assert listed(response) == [mine.pk]
    assert b"My Mug" in response.content
    assert b"Rival Lamp" not in response.content


def test_merchant_cannot_open_or_change_another_merchants_product(merchant_admin, rival_product):
    opened = merchant_admin.get(f"{CHANGELIST}{rival_product.pk}/change/")
    posted = merchant_admin.post(
        f"{CHANGELIST}{rival_product.pk}/change/",
        {
            "name": "Hijacked",
            "slug": "hijacked",
            "price": "0.01",
            "currency": "EUR",
            "image_urls": "[]",
            "attributes": "{}",
        },
    )
    adjust = merchant_admin.post(f"{CHANGELIST}{rival_product.pk}/adjust-stock/", {"delta": "-10", "reason": "x"})

    assert opened.status_code == 302  # the admin's "does not exist" redirect
    assert posted.status_code == 302
    assert adjust.status_code == 404
    rival_product.refresh_from_db()
    assert (rival_product.name, rival_product.price) == ("Rival Lamp", Decimal("10.00"))
    assert Stock.objects.get(product=rival_product).on_hand == 10


def test_merchant_edits_own_product(merchant_admin, merchant):
    product = ProductFactory(merchant=merchant, name="Mug", price=Decimal("5.00"))

    response = merchant_admin.post(
        f"{CHANGELIST}{product.pk}/change/",
        {
            "name": "Big Mug",
            "slug": "big-mug",
            "description": "",
            "price": "6.00",
            "currency": "EUR",
            "is_active": "on",
            "image_urls": "[]",
            "attributes": '{"size": "L"}',
        },
    )

    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
    product.refresh_from_db()
    assert (product.name, product.price, product.attributes) == ("Big Mug", Decimal("6.00"), {"size": "L"})


def test_merchant_adds_a_product_only_to_own_merchant(merchant_admin, merchant, rival_product, owner_id):
    form = {
        "sku": "NEW-1",
        "name": "New Thing",
        "slug": "new-thing",
        "price": "3.00",
        "currency": "EUR",
        "is_active": "on",
        "image_urls": "[]",
        "attributes": "{}",
        "initial_stock": "4",
    }

    created = merchant_admin.post(f"{CHANGELIST}add/", {**form, "merchant": merchant.pk})
    refused = merchant_admin.post(f"{CHANGELIST}add/", {**form, "sku": "NEW-2", "merchant": rival_product.merchant_id})

    assert created.status_code == 302
    product = Product.objects.get(sku="NEW-1")
    assert product.merchant_id == merchant.pk
    assert Stock.objects.get(product=product).on_hand == 4
    assert StockMovement.objects.get(product=product).actor == owner_id
    assert refused.status_code == 200  # form error: not a choice
    assert "merchant" in refused.context["adminform"].form.errors
    assert not Product.objects.filter(sku="NEW-2").exists()


def test_stock_adjustment_form_needs_a_reason_and_writes_the_ledger(merchant_admin, merchant, owner_id):
    product = ProductFactory(merchant=merchant, initial_stock=5)
    url = f"{CHANGELIST}{product.pk}/adjust-stock/"

    page = merchant_admin.get(url)
    no_reason = merchant_admin.post(url, {"delta": "3"})
    done = merchant_admin.post(url, {"delta": "3", "reason": "delivery"})
    too_much = merchant_admin.post(url, {"delta": "-100", "reason": "stock take"})

    assert page.status_code == 200
    assert no_reason.status_code == 200
    assert "reason" in no_reason.context["form"].errors
    assert done.status_code == 302
    assert too_much.status_code == 200
    assert "delta" in too_much.context["form"].errors
    assert Stock.objects.get(product=product).on_hand == 8
    movement = StockMovement.objects.filter(product=product, reason="adjustment").get()
    assert (movement.delta_on_hand, movement.note, movement.actor) == (3, "delivery", owner_id)


def test_low_stock_filter(merchant_admin, merchant):
    out = ProductFactory(merchant=merchant, initial_stock=0)
    low = ProductFactory(merchant=merchant, initial_stock=3)
    reserved_down = ProductFactory(merchant=merchant, initial_stock=20)
    reservation_reserve(order_id="o-1", lines=[{"product_id": reserved_down.pk, "quantity": 16}])
    plenty = ProductFactory(merchant=merchant, initial_stock=50)

    assert listed(merchant_admin.get(CHANGELIST, {"stock": "out"})) == [out.pk]
    assert listed(merchant_admin.get(CHANGELIST, {"stock": "low"})) == sorted([low.pk, reserved_down.pk])
    assert listed(merchant_admin.get(CHANGELIST, {"stock": "ok"})) == [plenty.pk]


def test_csv_export_contains_only_own_products(merchant_admin, merchant, rival_product):
    category = CategoryFactory(slug="mugs")
    ProductFactory(
        merchant=merchant,
        sku="M-1",
        name="Mug",
        price=Decimal("4.50"),
        category=category,
        initial_stock=7,
        attributes={"colour": "red"},
    )

    response = merchant_admin.get(f"{CHANGELIST}export-csv/")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    lines = response.content.decode().splitlines()
    assert lines == [
        "merchant,sku,name,description,price,currency,category,is_active,on_hand,image_urls,attributes",
        f'{merchant.slug},M-1,Mug,,4.50,EUR,mugs,true,7,,"{{""colour"": ""red""}}"',
    ]


def test_csv_export_action_on_selected(merchant_admin, merchant):
    first = ProductFactory(merchant=merchant, sku="A")
    ProductFactory(merchant=merchant, sku="B")

    response = merchant_admin.post(CHANGELIST, {"action": "export_selected_csv", "_selected_action": [first.pk]})

    assert response.status_code == 200
    assert [line.split(",")[1] for line in response.content.decode().splitlines()[1:]] == ["A"]


def upload(client, text: str):
    return client.post(
        f"{CHANGELIST}import-csv/",
        {"file": SimpleUploadedFile("p.csv", text.encode(), content_type="text/csv")},
    )


def test_csv_import_creates_and_updates(merchant_admin, merchant, owner_id):
    existing = ProductFactory(merchant=merchant, sku="OLD", name="Old", initial_stock=2)
    CategoryFactory(slug="mugs")
    text = (
        "merchant,sku,name,description,price,currency,category,is_active,on_hand,image_urls,attributes\n"
        f"{merchant.slug},NEW,New Mug,Nice,4.50,EUR,mugs,true,9,https://img.test/a.png,"
        '"{""size"": ""L""}"\n'
        f"{merchant.slug},OLD,Old Renamed,,7.00,,,false,5,,\n"
    )

    response = upload(merchant_admin, text)

    assert response.status_code == 302
    new = Product.objects.get(merchant=merchant, sku="NEW")
    assert (new.name, new.price, new.category.slug, new.attributes) == (
        "New Mug",
        Decimal("4.50"),
        "mugs",
        {"size": "L"},
    )
    assert new.image_urls == ["https://img.test/a.png"]
    assert Stock.objects.get(product=new).on_hand == 9
    existing.refresh_from_db()
    assert (existing.name, existing.price, existing.is_active) == ("Old Renamed", Decimal("7.00"), False)
    assert Stock.objects.get(product=existing).on_hand == 5
    movement = StockMovement.objects.filter(product=existing, reason="import").get()
    assert (movement.delta_on_hand, movement.actor) == (3, owner_id)


def test_csv_import_with_bad_rows_reports_each_and_imports_none(merchant_admin, merchant, rival_product):
    text = (
        "merchant,sku,name,price,on_hand,attributes\n"
        f"{merchant.slug},GOOD-1,Fine,1.00,1,\n"
        f"{merchant.slug},BAD-1,Bad price,cheap,1,\n"
        f"{rival_product.merchant.slug},BAD-2,Not mine,1.00,1,\n"
        f"{merchant.slug},BAD-3,Bad stock,1.00,-4,\n"
        f"{merchant.slug},GOOD-1,Duplicate,1.00,1,\n"
        f"{merchant.slug},BAD-4,Bad json,1.00,1,{{oops\n"
    )

    response = upload(merchant_admin, text)

    assert response.status_code == 200
    assert response.context["report"].errors == [
        {"row": 3, "field": "price", "reason": "A valid number is required."},
        {"row": 4, "field": "merchant", "reason": "You cannot import products for this merchant."},
        {"row": 5, "field": "on_hand", "reason": "Must be a whole number of units, 0 or more."},
        {"row": 6, "field": "sku", "reason": "Same merchant and SKU as row 2."},
        {
            "row": 7,
            "field": "attributes",
            "reason": "Not valid JSON: Expecting property name enclosed in double quotes.",
        },
    ]
    assert b"Same merchant and SKU as row 2." in response.content
    assert not Product.objects.filter(sku__in=["GOOD-1", "BAD-1", "BAD-2", "BAD-3", "BAD-4"]).exists()


def test_csv_import_refuses_a_bad_header(merchant_admin):
    response = upload(merchant_admin, "sku,colour\nA,red\n")

    assert response.status_code == 200
    assert response.context["report"].errors == [
        {"row": 1, "field": "header", "reason": "Missing columns: ['merchant', 'name', 'price']."},
        {"row": 1, "field": "header", "reason": "Unknown columns: ['colour']."},
    ]


def test_superuser_sees_everything(client, shadow_staff, merchant, rival_product):
    mine = ProductFactory(merchant=merchant)
    client.force_login(shadow_staff(new_user_id(), "admin"))

    response = client.get(CHANGELIST)

    assert listed(response) == sorted([mine.pk, rival_product.pk])


def test_support_sees_everything_and_changes_nothing(client, shadow_staff, rival_product):
    client.force_login(shadow_staff(new_user_id(), "support"))

    listing = client.get(CHANGELIST)
    posted = client.post(
        f"{CHANGELIST}{rival_product.pk}/change/",
        {
            "name": "Changed",
            "slug": "changed",
            "price": "1.00",
            "currency": "EUR",
            "image_urls": "[]",
            "attributes": "{}",
        },
    )
    adjust = client.post(f"{CHANGELIST}{rival_product.pk}/adjust-stock/", {"delta": "1", "reason": "x"})

    assert listed(listing) == [rival_product.pk]
    assert posted.status_code == 403
    assert adjust.status_code == 403
    rival_product.refresh_from_db()
    assert rival_product.name == "Rival Lamp"


def test_a_customer_cannot_enter_the_admin(client, django_user_model):
    customer = django_user_model.objects.create(username=new_user_id(), is_staff=False)
    client.force_login(customer)

    response = client.get(CHANGELIST)

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_ledger_admin_is_scoped(merchant_admin, merchant, rival_product):
    mine = ProductFactory(merchant=merchant, initial_stock=3)

    response = merchant_admin.get("/admin/inventory/stockmovement/")

    assert response.status_code == 200
    assert [m.product_id for m in response.context["cl"].result_list] == [mine.pk]


def test_category_cannot_move_below_its_own_descendant(client, shadow_staff):
    root = CategoryFactory(name="Root", slug="root")
    child = CategoryFactory(name="Child", slug="child", parent=root)
    client.force_login(shadow_staff(new_user_id(), "admin"))

    response = client.post(
        f"/admin/products/category/{root.pk}/change/", {"name": "Root", "slug": "root", "parent": child.pk}
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {
        "parent": ["A category cannot sit below itself or its own descendants."]
    }
    root.refresh_from_db()
    assert root.parent_id is None


def test_admin_form_checks_image_urls_and_attributes(merchant_admin, merchant):
    product = ProductFactory(merchant=merchant)
    form = {"name": "Mug", "slug": "mug", "price": "1.00", "currency": "EUR"}

    response = merchant_admin.post(
        f"{CHANGELIST}{product.pk}/change/", {**form, "image_urls": '["not a url"]', "attributes": "[1, 2]"}
    )

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert errors["image_urls"] == ["Enter a valid URL."]
    assert errors["attributes"] == ['A JSON object, e.g. {"colour": "red"}.']
