"""Stock reads: reservations for the order service's reconciliation, a product's stock ledger."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import QuerySet
from django.utils import timezone

from catalog_service.inventory.models import Reservation, StockMovement


def reservations_of_orders(*, order_ids: list[str]) -> QuerySet[Reservation]:
    return Reservation.objects.filter(order_id__in=order_ids).order_by("order_id")


def reservations_held_idle(*, idle_seconds: int, limit: int) -> QuerySet[Reservation]:
    """Held reservations untouched for ``idle_seconds``: candidates for "held without a live order"."""
    before = timezone.now() - timedelta(seconds=idle_seconds)
    return Reservation.objects.filter(status=Reservation.Status.HELD, updated_at__lte=before).order_by("updated_at")[
        :limit
    ]


def stock_movements(*, product_id: int) -> QuerySet[StockMovement]:
    """A product's stock ledger, newest first."""
    return StockMovement.objects.filter(product_id=product_id).order_by("-id")
