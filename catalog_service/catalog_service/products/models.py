"""Merchants, their members, the category tree and products.

Users live in the auth service; here they are UUID strings (``user_id``). Their object permissions
(django-guardian) hang on local "shadow" Django users whose ``username`` is that UUID.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase


class Merchant(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100, unique=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name


class MerchantMember(models.Model):
    """A Bazaar user who works for a merchant.

    Owners and managers hold rights on every product of the merchant; a colleague only on the
    products an owner granted (per-product guardian permissions).
    """

    class Role(models.TextChoices):
        OWNER = "owner", "Owner"
        MANAGER = "manager", "Manager"
        COLLEAGUE = "colleague", "Colleague (granted products only)"

    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="members")
    user_id = models.CharField(max_length=64, db_index=True)
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MANAGER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["merchant", "user_id"], name="merchant_member_unique"),
        ]
        ordering = ["merchant_id", "id"]

    def __str__(self) -> str:
        return f"{self.user_id} ({self.role}) @ {self.merchant_id}"

    @property
    def has_all_products(self) -> bool:
        return self.role in (self.Role.OWNER, self.Role.MANAGER)


class Category(models.Model):
    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=120, unique=True)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="children")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "id"]
        verbose_name_plural = "categories"

    def __str__(self) -> str:
        return self.name


def default_currency() -> str:
    return settings.CATALOG_DEFAULT_CURRENCY


class Product(models.Model):
    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="products")
    category = models.ForeignKey(Category, null=True, blank=True, on_delete=models.SET_NULL, related_name="products")
    sku = models.CharField(max_length=64)
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=220)
    description = models.TextField(blank=True, default="")
    price = models.DecimalField(max_digits=10, decimal_places=2, validators=[MinValueValidator(Decimal("0.00"))])
    currency = models.CharField(max_length=3, default=default_currency)
    is_active = models.BooleanField(default=True)
    image_urls = models.JSONField(default=list, blank=True)
    attributes = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["merchant", "sku"], name="product_sku_unique_per_merchant"),
            models.CheckConstraint(condition=models.Q(price__gte=0), name="product_price_not_negative"),
        ]
        indexes = [
            models.Index(fields=["is_active", "price"], name="product_active_price_idx"),
            models.Index(fields=["is_active", "name"], name="product_active_name_idx"),
        ]
        permissions = [("adjust_product_stock", "Can adjust the stock of the product")]

    def __str__(self) -> str:
        return f"{self.name} ({self.sku})"


# Direct foreign keys instead of guardian's generic tables: real integrity, cascades, fast joins.
class ProductUserObjectPermission(UserObjectPermissionBase):
    content_object = models.ForeignKey(Product, on_delete=models.CASCADE)


class ProductGroupObjectPermission(GroupObjectPermissionBase):
    content_object = models.ForeignKey(Product, on_delete=models.CASCADE)
