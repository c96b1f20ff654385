"""Seed the demo catalog when it is empty: "Acme Goods" run by the demo merchant, with stock."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction

from bazaar_common.demo import DEMO_MERCHANT, DEMO_MERCHANT_SLUG
from catalog_service.products import services
from catalog_service.products.models import Category, Merchant, MerchantMember, Product

CATEGORIES = {
    "home": ("Home & Kitchen", None),
    "kitchen": ("Kitchen", "home"),
    "garden": ("Garden", "home"),
    "electronics": ("Electronics", None),
    "audio": ("Audio", "electronics"),
    "outdoor": ("Outdoor", None),
}

# sku, name, category, price, stock, description
PRODUCTS = [
    ("ACME-001", "Cast Iron Skillet", "kitchen", "34.90", 40, "A 26 cm pre-seasoned cast iron pan."),
    ("ACME-002", "Chef's Knife", "kitchen", "59.00", 25, "A 20 cm stainless steel chef's knife."),
    ("ACME-003", "Espresso Cups (set of 4)", "kitchen", "18.50", 60, "Porcelain espresso cups."),
    ("ACME-004", "Bamboo Cutting Board", "kitchen", "22.00", 35, "Large bamboo board with juice groove."),
    ("ACME-005", "French Press", "kitchen", "29.90", 30, "One litre glass coffee press."),
    ("ACME-006", "Garden Hose 25 m", "garden", "39.00", 15, "Kink-free hose with spray nozzle."),
    ("ACME-007", "Pruning Shears", "garden", "24.90", 20, "Bypass pruners for branches up to 2 cm."),
    ("ACME-008", "Herb Planter", "garden", "16.00", 45, "Three-pot planter for the windowsill."),
    ("ACME-009", "Watering Can", "garden", "14.50", 50, "A 5 litre galvanised watering can."),
    ("ACME-010", "Wireless Headphones", "audio", "129.00", 12, "Over-ear noise cancelling headphones."),
    ("ACME-011", "Bluetooth Speaker", "audio", "79.00", 18, "Waterproof portable speaker."),
    ("ACME-012", "Earbuds", "audio", "49.00", 40, "True wireless earbuds with charging case."),
    ("ACME-013", "USB-C Charger 65 W", "electronics", "39.90", 55, "Compact GaN charger, two ports."),
    ("ACME-014", "Power Bank", "electronics", "34.00", 30, "10,000 mAh power bank."),
    ("ACME-015", "Desk Lamp", "electronics", "44.00", 22, "LED desk lamp with dimmer."),
    ("ACME-016", "Camping Tent", "outdoor", "189.00", 8, "Two-person three-season tent."),
    ("ACME-017", "Sleeping Bag", "outdoor", "89.00", 14, "Down sleeping bag, comfort 0 °C."),
    ("ACME-018", "Headlamp", "outdoor", "27.50", 40, "Rechargeable 400 lumen headlamp."),
    ("ACME-019", "Water Bottle", "outdoor", "19.90", 80, "Insulated steel bottle, 750 ml."),
    ("ACME-020", "Trekking Poles", "outdoor", "64.00", 10, "Aluminium poles, pair."),
]


class Command(BaseCommand):
    help = "Seed the demo merchant, categories and ~20 products with stock, when the catalog is empty."

    def handle(self, *args: Any, **options: Any) -> None:
        if Product.objects.exists():
            self.stdout.write("catalog already has products; nothing seeded")
            return
        with transaction.atomic():
            merchant = Merchant.objects.filter(slug=DEMO_MERCHANT_SLUG).first()
            if merchant is None:
                merchant = services.merchant_create(
                    name="Acme Goods", slug=DEMO_MERCHANT_SLUG, owner_id=DEMO_MERCHANT.user_id
                )
            else:
                services.merchant_member_add(
                    merchant=merchant, user_id=DEMO_MERCHANT.user_id, role=MerchantMember.Role.OWNER
                )
            categories: dict[str, Category] = {}
            for slug, (name, parent) in CATEGORIES.items():
                existing = Category.objects.filter(slug=slug).first()
                categories[slug] = existing or services.category_create(
                    name=name, slug=slug, parent=categories.get(parent) if parent else None
                )
            for sku, name, category, price, stock, description in PRODUCTS:
                services.product_create(
                    merchant=merchant,
                    actor_id="system:seed",
                    sku=sku,
                    name=name,
                    description=description,
                    price=Decimal(price),
                    category=categories[category],
                    initial_stock=stock,
                )
        self.stdout.write(f"seeded merchant {merchant.slug} with {len(PRODUCTS)} products")
