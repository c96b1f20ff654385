"""Reads: carts, orders as a viewer may see them, overdue orders, and the dashboard's figures."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import TruncDate, TruncHour
from django.utils import timezone

from bazaar_common.domain import NotFound
from order_service.orders.models import CartItem, Order, OrderStatus
from order_service.orders.permissions import OrderViewer

S = OrderStatus
REVENUE_STATUSES = (S.PAID, S.SHIPPED, S.DELIVERED)


def cart_items(*, customer_id: str) -> list[CartItem]:
    """The customer's cart lines in the order they were added (empty when there is no cart)."""
    return list(CartItem.objects.filter(cart__customer_id=customer_id).order_by("added_at", "id"))


def _with_details(queryset: QuerySet[Order]) -> QuerySet[Order]:
    return queryset.prefetch_related("lines", "events")


def order_list(*, viewer: OrderViewer, status: str | None = None) -> QuerySet[Order]:
    """Orders ``viewer`` may see, newest first, optionally of one status."""
    queryset = Order.objects.all()
    visible = viewer.order_filter()
    if visible is not None:
        queryset = queryset.filter(visible)
    if status:
        queryset = queryset.filter(status=status)
    return _with_details(queryset.order_by("-created_at", "id"))


def order_get(*, viewer: OrderViewer, order_id: Any) -> Order:
    """One order ``viewer`` may see, or 404 (also for orders that exist but are not theirs)."""
    order = order_list(viewer=viewer).filter(pk=order_id).first()
    if order is None:
        raise NotFound("Order not found.")
    return order


def orders_of_customer(*, customer_id: str) -> QuerySet[Order]:
    """Every order of one customer, for the privacy export."""
    return _with_details(Order.objects.filter(customer_id=customer_id).order_by("created_at", "id"))


def order_overdue_ids(*, now: datetime) -> list[Any]:
    """Reserved orders past their payment time, and pending ones the catalog never answered."""
    pending_deadline = now - timedelta(seconds=settings.ORDER_PENDING_TIMEOUT_SECONDS)
    return list(
        Order.objects.filter(
            Q(status=S.RESERVED, payment_due_at__lte=now) | Q(status=S.PENDING, created_at__lte=pending_deadline)
        )
        .order_by("created_at")
        .values_list("pk", flat=True)[:500]
    )


# --- Dashboard -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DashboardFigures:
    orders_per_hour: list[tuple[datetime, int]]
    orders_by_status: list[tuple[str, int]]
    rejection_rate: float
    cancellation_rate: float
    orders_in_rate_window: int
    revenue_per_day: list[tuple[Any, Decimal]]
    currency: str


def dashboard_figures(*, now: datetime | None = None, days: int = 14) -> DashboardFigures:
    """Figures for support's dashboard: the last day by hour, statuses, rates, revenue by day."""
    now = now or timezone.now()
    this_hour = now.replace(minute=0, second=0, microsecond=0)
    first_hour = this_hour - timedelta(hours=23)
    per_hour = {
        row["hour"]: row["count"]
        for row in Order.objects.filter(created_at__gte=first_hour)
        .annotate(hour=TruncHour("created_at"))
        .values("hour")
        .annotate(count=Count("id"))
    }
    hours = [first_hour + timedelta(hours=index) for index in range(24)]

    by_status_raw = dict(Order.objects.values_list("status").annotate(count=Count("id")).values_list("status", "count"))
    by_status = [(status.value, by_status_raw.get(status.value, 0)) for status in OrderStatus]

    window_start = now - timedelta(days=7)
    window = Order.objects.filter(created_at__gte=window_start).aggregate(
        total=Count("id"),
        rejected=Count("id", filter=Q(status=S.REJECTED)),
        cancelled=Count("id", filter=Q(status=S.CANCELLED)),
    )
    total = window["total"] or 0

    today = now.date()
    first_day = today - timedelta(days=days - 1)
    revenue_rows = (
        Order.objects.filter(status__in=REVENUE_STATUSES, paid_at__date__gte=first_day)
        .annotate(day=TruncDate("paid_at"))
        .values("day")
        .annotate(revenue=Sum("total"))
    )
    revenue = {row["day"]: row["revenue"] or Decimal("0") for row in revenue_rows}
    return DashboardFigures(
        orders_per_hour=[(hour, per_hour.get(hour, 0)) for hour in hours],
        orders_by_status=by_status,
        rejection_rate=(window["rejected"] / total) if total else 0.0,
        cancellation_rate=(window["cancelled"] / total) if total else 0.0,
        orders_in_rate_window=total,
        revenue_per_day=[
            (first_day + timedelta(days=index), revenue.get(first_day + timedelta(days=index), Decimal("0")))
            for index in range(days)
        ],
        currency=str(settings.PLATFORM_CURRENCY),
    )


def order_detail(*, order_id: Any) -> Order:
    """One order with its lines and timeline, fresh from the database (no access check)."""
    return _with_details(Order.objects.all()).get(pk=order_id)
