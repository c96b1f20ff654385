"""Stock per product, its ledger, and the reservations held for orders.

``available = on_hand - reserved``. The database itself refuses a negative stock or a reservation
larger than what is on hand, whatever code path writes the row.
"""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q

from catalog_service.products.models import Product


class Stock(models.Model):
    product = models.OneToOneField(Product, primary_key=True, on_delete=models.CASCADE, related_name="stock")
    on_hand = models.IntegerField(default=0)
    reserved = models.IntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(on_hand__gte=0), name="stock_on_hand_not_negative"),
            models.CheckConstraint(condition=Q(reserved__gte=0), name="stock_reserved_not_negative"),
            models.CheckConstraint(condition=Q(reserved__lte=F("on_hand")), name="stock_reserved_within_on_hand"),
        ]

    def __str__(self) -> str:
        return f"stock of {self.product_id}: {self.on_hand} on hand, {self.reserved} reserved"

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


class StockMovement(models.Model):
    """One change of a product's stock. Summing the deltas reproduces the current numbers."""

    class Reason(models.TextChoices):
        INITIAL = "initial", "Initial stock"
        ADJUSTMENT = "adjustment", "Manual adjustment"
        IMPORT = "import", "CSV import"
        RESERVE = "reserve", "Reserved for an order"
        COMMIT = "commit", "Shipped for a paid order"
        RELEASE = "release", "Reservation released"
        EXPIRE = "expire", "Reservation expired"
        RESTOCK = "restock", "Returned by a cancelled paid order"

    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="stock_movements")
    delta_on_hand = models.IntegerField(default=0)
    delta_reserved = models.IntegerField(default=0)
    on_hand_after = models.IntegerField()
    reserved_after = models.IntegerField()
    reason = models.CharField(max_length=16, choices=Reason.choices)
    note = models.CharField(max_length=500, blank=True, default="")
    order_id = models.CharField(max_length=64, blank=True, default="", db_index=True)
    actor = models.CharField(max_length=100)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.product_id} {self.reason} {self.delta_on_hand:+}/{self.delta_reserved:+}"


class Reservation(models.Model):
    """The stock held for one order. One per order id: that makes reserving idempotent by order."""

    class Status(models.TextChoices):
        HELD = "held", "Held"
        COMMITTED = "committed", "Committed"
        RELEASED = "released", "Released"
        REJECTED = "rejected", "Rejected"

    order_id = models.CharField(max_length=64, unique=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.HELD)
    expires_at = models.DateTimeField(null=True, blank=True)
    # When the catalog last asked the order service whether this overdue hold may go (HoldExpiring).
    expiry_asked_at = models.DateTimeField(null=True, blank=True)
    release_reason = models.CharField(max_length=200, blank=True, default="")
    rejection = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["expires_at"], name="reservation_held_expiry_idx", condition=Q(status="held")),
        ]

    def __str__(self) -> str:
        return f"reservation {self.order_id} ({self.status})"


class ReservationLine(models.Model):
    reservation = models.ForeignKey(Reservation, on_delete=models.CASCADE, related_name="lines")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="+")
    quantity = models.PositiveIntegerField()

    class Meta:
        ordering = ["product_id"]
        constraints = [
            models.UniqueConstraint(fields=["reservation", "product"], name="reservation_line_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} × {self.product_id}"
