"""Stock reads for other services (the order service's reconciliation)."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import QuerySet
from django.utils import timezone

from catalog_service.inventory.models import Reservation


def reservations_of_orders(*, order_ids: list[str]) -> QuerySet[Reservation]:
    return Reservation.objects.filter(order_id__in=order_ids).order_by("order_id")


def reservations_held_idle(*, idle_seconds: int, limit: int) -> QuerySet[Reservation]:
    """Held reservations untouched for ``idle_seconds``: candidates for "held without a live order"."""
    before = timezone.now() - timedelta(seconds=idle_seconds)
    return Reservation.objects.filter(status=Reservation.Status.HELD, updated_at__lte=before).order_by("updated_at")[
        :limit
    ]
