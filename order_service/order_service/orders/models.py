"""Carts, orders with their lines, the timeline of an order, and payment attempts.

Prices, names and merchants are copied into the order lines at checkout (a snapshot): later changes
in the catalog never change what a customer bought. Status changes go through
:mod:`order_service.orders.state_machine` only.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from django.db import models
from django.db.models import Q

MONEY: dict[str, Any] = {"max_digits": 12, "decimal_places": 2}


class OrderStatus(models.TextChoices):
    PENDING = "pending", "Pending (stock requested)"
    RESERVED = "reserved", "Reserved (stock held, awaiting payment)"
    REJECTED = "rejected", "Rejected"
    PAID = "paid", "Paid"
    SHIPPED = "shipped", "Shipped"
    DELIVERED = "delivered", "Delivered"
    CANCELLED = "cancelled", "Cancelled"


class Cart(models.Model):
    """One cart per customer; it lives until the customer empties it or checks it out."""

    customer_id = models.UUIDField(unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"cart of {self.customer_id}"


class CartItem(models.Model):
    cart = models.ForeignKey(Cart, on_delete=models.CASCADE, related_name="items")
    product_id = models.PositiveBigIntegerField()
    quantity = models.PositiveIntegerField()
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["cart", "product_id"], name="cart_item_product_unique"),
            models.CheckConstraint(condition=Q(quantity__gte=1), name="cart_item_quantity_positive"),
        ]
        ordering = ["added_at", "id"]

    def __str__(self) -> str:
        return f"{self.quantity} × product {self.product_id}"


class Order(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    customer_id = models.UUIDField(db_index=True)
    # Copied from the token at checkout so support can find orders by email; erased on request.
    customer_email = models.EmailField(blank=True, default="", db_index=True)
    status = models.CharField(max_length=16, choices=OrderStatus.choices, default=OrderStatus.PENDING, db_index=True)
    currency = models.CharField(max_length=3)
    subtotal = models.DecimalField(**MONEY)
    total = models.DecimalField(**MONEY)
    # The shipping address as it was at checkout (a copy, never a reference): {} when none.
    shipping_address = models.JSONField(default=dict, blank=True)
    # Why the catalog refused the stock: {"reason", "shortages": [...]}; {} otherwise.
    rejection = models.JSONField(default=dict, blank=True)
    idempotency_key = models.CharField(max_length=255, blank=True, default="")
    request_fingerprint = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    reserved_at = models.DateTimeField(null=True, blank=True)
    payment_due_at = models.DateTimeField(null=True, blank=True, db_index=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    shipped_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    refunded_amount = models.DecimalField(**MONEY, default=Decimal("0.00"))
    # How many payment attempts ended in a definite decline; names the next attempt's key.
    declined_payments = models.PositiveIntegerField(default=0)
    customer_erased_at = models.DateTimeField(null=True, blank=True)
    # The catalog's acknowledgements: the paid order's units left stock / the held units went back.
    stock_committed_at = models.DateTimeField(null=True, blank=True)
    stock_released_at = models.DateTimeField(null=True, blank=True)
    # Set when the saga could not settle by itself (a step never answered, stock that could not be
    # committed for a paid order); support finds these in the admin. Empty: nothing to do.
    support_flag = models.CharField(max_length=255, blank=True, default="", db_default="")

    class Meta:
        ordering = ["-created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["customer_id", "idempotency_key"],
                condition=~Q(idempotency_key=""),
                name="order_idempotency_key_unique",
            ),
            models.CheckConstraint(condition=Q(total__gte=0), name="order_total_not_negative"),
        ]

    def __str__(self) -> str:
        return f"order {self.id} ({self.status})"

    @property
    def stock_held(self) -> bool:
        """Whether the catalog holds (or has committed) stock for this order."""
        return self.reserved_at is not None


class OrderLine(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    product_id = models.PositiveBigIntegerField(db_index=True)
    merchant_id = models.PositiveBigIntegerField(db_index=True)
    sku = models.CharField(max_length=64)
    name = models.CharField(max_length=255)
    unit_price = models.DecimalField(**MONEY)
    quantity = models.PositiveIntegerField()
    currency = models.CharField(max_length=3)
    shipped_at = models.DateTimeField(null=True, blank=True)
    shipped_by = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        ordering = ["product_id", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gte=1), name="order_line_quantity_positive"),
            models.UniqueConstraint(fields=["order", "product_id"], name="order_line_product_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} × {self.name}"

    @property
    def line_total(self) -> Decimal:
        return self.unit_price * self.quantity


class OrderEvent(models.Model):
    """The timeline: every status change (and refund) with who did it, when and why."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=32)
    from_status = models.CharField(max_length=16, blank=True, default="")
    to_status = models.CharField(max_length=16, blank=True, default="")
    # A Bazaar user id, "service:<name>" for messages, or "system" for periodic tasks.
    actor = models.CharField(max_length=64)
    reason = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.kind} {self.from_status}→{self.to_status}"


class PaymentStatus(models.TextChoices):
    PENDING = "pending", "Pending (no answer yet)"
    SUCCEEDED = "succeeded", "Succeeded"
    DECLINED = "declined", "Declined"
    REFUNDED = "refunded", "Refunded"


class PaymentAttempt(models.Model):
    """One attempt to charge an order, identified towards the provider by ``idempotency_key``.

    A retry after a timeout reuses the key of the unanswered attempt, so the provider charges at
    most once; only a definite decline lets the next attempt use a new key.
    """

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="payments")
    idempotency_key = models.CharField(max_length=128, unique=True)
    provider = models.CharField(max_length=32)
    card_token = models.CharField(max_length=64)
    amount = models.DecimalField(**MONEY)
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=16, choices=PaymentStatus.choices, default=PaymentStatus.PENDING)
    provider_reference = models.CharField(max_length=64, blank=True, default="")
    failure_reason = models.CharField(max_length=255, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"payment {self.idempotency_key} ({self.status})"


class SimulatedCharge(models.Model):
    """The books of the built-in simulated payment provider (stands in for a real provider's).

    Kept apart from :class:`PaymentAttempt` on purpose: it is what the "provider" did, written
    outside the order's transactions, so tests can prove that nothing was charged twice.
    """

    idempotency_key = models.CharField(max_length=128, unique=True)
    reference = models.CharField(max_length=64, unique=True)
    amount = models.DecimalField(**MONEY)
    currency = models.CharField(max_length=3)
    refunded_amount = models.DecimalField(**MONEY, default=Decimal("0.00"))
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"charge {self.reference} {self.amount} {self.currency}"


class ReconciliationRepair(models.Model):
    """One disagreement between an order and its catalog reservation that the periodic
    reconciliation found and repaired (or flagged), shown to support in the admin."""

    order_id = models.UUIDField(db_index=True)
    kind = models.CharField(max_length=48, db_index=True)
    order_status = models.CharField(max_length=16, blank=True, default="")
    reservation_status = models.CharField(max_length=16, blank=True, default="")
    detail = models.CharField(max_length=255, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.kind} {self.order_id}"
