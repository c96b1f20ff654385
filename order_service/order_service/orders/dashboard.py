"""The support dashboard: charts of the last day and weeks, drawn on the server as SVG."""

from __future__ import annotations

from decimal import Decimal

from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from order_service.orders import charts, selectors


def _percent(value: float) -> str:
    return f"{value * 100:.1f} %"


@staff_member_required
def dashboard_view(request: HttpRequest) -> HttpResponse:
    """For support and admins (anyone allowed to view orders in this admin)."""
    if not request.user.has_perm("orders.view_order"):
        raise PermissionDenied
    figures = selectors.dashboard_figures()
    currency = figures.currency

    def money(value: Decimal | float | int) -> str:
        return f"{Decimal(value):.2f} {currency}"

    context = {
        **admin.site.each_context(request),
        "title": "Orders dashboard",
        "figures": figures,
        "orders_per_hour_chart": charts.column_chart(
            [(hour.strftime("%H:00"), count) for hour, count in figures.orders_per_hour],
            title="Orders per hour, last 24 hours (UTC)",
            label_every=3,
        ),
        "orders_by_status_chart": charts.bar_chart(figures.orders_by_status, title="Orders by status"),
        "rates_chart": charts.bar_chart(
            [("rejected", figures.rejection_rate), ("cancelled", figures.cancellation_rate)],
            title=f"Rejection and cancellation rates, last 7 days ({figures.orders_in_rate_window} orders)",
            value_text=_percent,
            max_value=1,
        ),
        "revenue_chart": charts.column_chart(
            [(day.strftime("%d %b"), amount) for day, amount in figures.revenue_per_day],
            title=f"Revenue per day ({currency}, paid orders)",
            color=charts.PALETTE[1],
            label_every=2,
            value_text=money,
        ),
    }
    return TemplateResponse(request, "orders/dashboard.html", context)
