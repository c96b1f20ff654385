"""Catalog writes: merchants and their members, categories, products, and product grants."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils.text import slugify

from bazaar_common.domain import Conflict, InvalidInput
from catalog_service.inventory.services import stock_initialize
from catalog_service.products import permissions
from catalog_service.products.cache import catalog_changed
from catalog_service.products.models import Category, Merchant, MerchantMember, Product

PRODUCT_EDITABLE_FIELDS = (
    "name",
    "slug",
    "description",
    "price",
    "currency",
    "category",
    "is_active",
    "image_urls",
    "attributes",
)


def merchant_create(*, name: str, slug: str, owner_id: str) -> Merchant:
    """A new merchant; its slug is unique by the database's constraint, so two concurrent
    requests for one slug give one merchant and one 409 (a check before the insert would race)."""
    try:
        with transaction.atomic():
            merchant = Merchant.objects.create(name=name, slug=slug)
            merchant_member_add(merchant=merchant, user_id=owner_id, role=MerchantMember.Role.OWNER)
            catalog_changed(taxonomy=True)
    except IntegrityError as exc:
        if Merchant.objects.filter(slug=slug).exists():
            raise Conflict(
                "A merchant with this slug exists.",
                code="slug_taken",
                field_errors={"slug": ["A merchant with this slug exists."]},
            ) from exc
        raise
    return merchant


def merchant_member_add(*, merchant: Merchant, user_id: str, role: str) -> MerchantMember:
    """Add (or change the role of) a member; owners and managers get rights on every product."""
    with transaction.atomic():
        member, _ = MerchantMember.objects.update_or_create(merchant=merchant, user_id=user_id, defaults={"role": role})
        permissions.shadow_user_ensure(user_id)
        if member.has_all_products:
            permissions.product_permissions_assign(
                user_id=user_id,
                products=Product.objects.filter(merchant=merchant),
                permissions=permissions.PRODUCT_PERMISSIONS,
            )
    return member


def merchant_member_remove(*, merchant: Merchant, user_id: str) -> None:
    with transaction.atomic():
        MerchantMember.objects.filter(merchant=merchant, user_id=user_id).delete()
        permissions.product_permissions_remove(
            user_id=user_id,
            products=Product.objects.filter(merchant=merchant),
            permissions=permissions.PRODUCT_PERMISSIONS,
        )


def category_create(*, name: str, slug: str | None = None, parent: Category | None = None) -> Category:
    with transaction.atomic():
        category = Category.objects.create(name=name, slug=slug or slugify(name), parent=parent)
        catalog_changed(taxonomy=True)
    return category


def _check_currency(currency: str) -> None:
    if currency not in settings.CATALOG_CURRENCIES:
        raise InvalidInput({"currency": [f"Unsupported currency; one of: {', '.join(settings.CATALOG_CURRENCIES)}."]})


def product_create(
    *,
    merchant: Merchant,
    actor_id: str,
    sku: str,
    name: str,
    price: Decimal,
    currency: str | None = None,
    slug: str | None = None,
    description: str = "",
    category: Category | None = None,
    is_active: bool = True,
    image_urls: list[str] | None = None,
    attributes: dict[str, Any] | None = None,
    initial_stock: int = 0,
    stock_reason: str = "initial",
) -> Product:
    """A new product with its stock row; the merchant's owners and managers get rights on it."""
    currency = currency or settings.CATALOG_DEFAULT_CURRENCY
    _check_currency(currency)
    try:
        with transaction.atomic():
            product = Product.objects.create(
                merchant=merchant,
                sku=sku,
                name=name,
                slug=slug or slugify(name)[:220],
                description=description,
                price=price,
                currency=currency,
                category=category,
                is_active=is_active,
                image_urls=image_urls or [],
                attributes=attributes or {},
            )
            stock_initialize(product=product, on_hand=initial_stock, actor=actor_id, reason=stock_reason)
            permissions.product_permissions_for_members(product=product)
            catalog_changed(product_ids=[product.pk])
    except IntegrityError as exc:
        if Product.objects.filter(merchant=merchant, sku=sku).exists():
            raise InvalidInput({"sku": ["This merchant already has a product with this SKU."]}) from exc
        raise
    return product


def product_input_resolve(data: dict[str, Any]) -> dict[str, Any]:
    """API input as the product's fields: ``category_id`` becomes ``category`` (an id that names
    no category is a 400 on that field)."""
    changes = dict(data)
    if "category_id" in changes:
        category_id = changes.pop("category_id")
        category = Category.objects.filter(pk=category_id).first() if category_id else None
        if category_id and category is None:
            raise InvalidInput({"category_id": ["No category with this id."]})
        changes["category"] = category
    return changes


def product_update(*, product: Product, data: dict[str, Any]) -> Product:
    """Change the given editable fields only; a new name gives a new slug unless one is given."""
    data = product_input_resolve(data)
    unknown = set(data) - set(PRODUCT_EDITABLE_FIELDS)
    if unknown:
        raise ValueError(f"not editable: {sorted(unknown)}")
    if "currency" in data:
        _check_currency(data["currency"])
    changes = dict(data)
    if "name" in changes and "slug" not in changes:
        changes["slug"] = slugify(changes["name"])[:220]
    fields = [name for name, value in changes.items() if getattr(product, name) != value]
    if not fields:
        return product
    with transaction.atomic():
        for name in fields:
            setattr(product, name, changes[name])
        product.save(update_fields=[*fields, "updated_at"])
        catalog_changed(product_ids=[product.pk])
    return product


def product_deactivate(*, product: Product) -> Product:
    return product_update(product=product, data={"is_active": False})


def product_grants_set(
    *, merchant: Merchant, user_id: str, products: Iterable[Product], permissions_to_grant: Iterable[str]
) -> None:
    """An owner grants a colleague rights on some products of the merchant only."""
    product_list = list(products)
    codenames = list(permissions_to_grant)
    if any(product.merchant_id != merchant.pk for product in product_list):
        raise InvalidInput({"product_ids": ["Every product must belong to this merchant."]})
    with transaction.atomic():
        if permissions.VIEW not in codenames:
            codenames.append(permissions.VIEW)  # any right on a product implies seeing it
        permissions.product_permissions_assign(user_id=user_id, products=product_list, permissions=codenames)


def product_grants_revoke(
    *, merchant: Merchant, user_id: str, products: Iterable[Product], permissions_to_revoke: Iterable[str]
) -> None:
    product_list = [product for product in products if product.merchant_id == merchant.pk]
    with transaction.atomic():
        permissions.product_permissions_remove(
            user_id=user_id, products=product_list, permissions=list(permissions_to_revoke)
        )
