"""factory_boy factories for orders made directly in the database (admin, dashboard, visibility)."""

from __future__ import annotations

import uuid
from decimal import Decimal

import factory

from order_service.orders.models import Order, OrderLine, OrderStatus

# Merchant ids as the catalog would give them (the tests' fake catalog serves them).
MERCHANT_A = 11
MERCHANT_B = 22


class OrderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Order

    customer_id = factory.LazyFunction(uuid.uuid4)
    customer_email = factory.Sequence(lambda n: f"customer{n}@example.com")
    status = OrderStatus.PENDING
    currency = "EUR"
    subtotal = Decimal("20.00")
    total = Decimal("20.00")
    shipping_address = factory.LazyFunction(
        lambda: {"full_name": "Ada Lovelace", "line1": "1 Main St", "city": "Paris", "country": "FR"}
    )


class OrderLineFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = OrderLine

    order = factory.SubFactory(OrderFactory)
    product_id = factory.Sequence(lambda n: 1000 + n)
    merchant_id = MERCHANT_A
    sku = factory.LazyAttribute(lambda line: f"SKU-{line.product_id}")
    name = factory.LazyAttribute(lambda line: f"Product {line.product_id}")
    unit_price = Decimal("10.00")
    quantity = 2
    currency = "EUR"
