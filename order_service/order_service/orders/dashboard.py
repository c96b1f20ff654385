"""The support dashboard: charts of the last day and weeks, drawn on the server as SVG."""

from __future__ import annotations

from decimal import Decimal
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from order_service.orders import charts, selectors


def _percent(value: float | Decimal) -> str:
    return f"{float(value) * 100:.1f} %"


# What support looks at in Prometheus next to these figures (the saga's live state).
PROMETHEUS_GRAPHS = (
    ("Order transitions per second", "sum by (from_state, to_state) (rate(bazaar_order_transitions_total[5m]))"),
    ("Orders waiting past a deadline", "sum by (step) (bazaar_saga_overdue_steps)"),
    ("Outbox backlog by service", "max by (service) (bazaar_outbox_unpublished_messages)"),
    ("Queue depth", "max by (queue) (bazaar_queue_depth_messages)"),
)


def prometheus_links(base_url: str) -> list[tuple[str, str]]:
    """(title, address) of the platform's alerts and of graphs of the order flow; none without
    a Prometheus (``PROMETHEUS_URL``)."""
    if not base_url:
        return []
    graphs = [
        (title, f"{base_url}/graph?" + urlencode({"g0.expr": expr, "g0.tab": "0", "g0.range_input": "6h"}))
        for title, expr in PROMETHEUS_GRAPHS
    ]
    return [("Alerts (pending and firing)", f"{base_url}/alerts"), *graphs]


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
        "prometheus_links": prometheus_links(settings.PROMETHEUS_URL),
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
