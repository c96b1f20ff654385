"""Business limits on what one order, one cart line and one customer may hold.

They are checked on the lines as they will be ordered — explicit items or the cart, however the
cart was built — so two cart adds of 1,000 never make a line of 2,000. The cap on unpaid holds
keeps one account from holding a product's whole stock for the payment window (anti-scalping); it
is checked before the order is written, so two checkouts of one customer racing each other can
both pass it once (it bounds hoarding, it is not a stock guard — the catalog's reservation is).
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db.models import Sum
from rest_framework.exceptions import ValidationError

from bazaar_common.errors import Conflict
from order_service.orders.models import OrderLine, OrderStatus

UNPAID = (OrderStatus.PENDING, OrderStatus.RESERVED)


def line_quantity_check(quantity: int, *, field: str) -> None:
    limit = settings.ORDER_MAX_LINE_QUANTITY
    if quantity > limit:
        raise ValidationError({field: [f"{quantity} units in one line; at most {limit} per line."]})


def order_lines_check(lines: Iterable[dict[str, int]], *, source: str) -> None:
    """Per-line and per-order unit caps, naming the offending input."""
    total = 0
    for index, line in enumerate(lines):
        line_quantity_check(line["quantity"], field=f"{source}.{index}.quantity")
        total += line["quantity"]
    limit = settings.ORDER_MAX_UNITS
    if total > limit:
        raise ValidationError({source: [f"{total} units in one order; at most {limit} per order."]})


def order_total_check(priced_lines: Iterable[dict[str, Any]], *, source: str) -> None:
    total = sum((line["unit_price"] * line["quantity"] for line in priced_lines), Decimal("0"))
    if total <= 0:
        raise ValidationError({source: [f"The order total would be {total}; it must be positive."]})


def unpaid_holds_check(*, customer_id: str, lines: Iterable[dict[str, int]]) -> None:
    """409 when this order would take the customer's unpaid units of a product over the cap."""
    wanted = {line["product_id"]: line["quantity"] for line in lines}
    held = dict(
        OrderLine.objects.filter(order__customer_id=customer_id, order__status__in=UNPAID, product_id__in=list(wanted))
        .values_list("product_id")
        .annotate(units=Sum("quantity"))
    )
    limit = settings.ORDER_MAX_UNPAID_UNITS_PER_PRODUCT
    over = sorted(pid for pid, quantity in wanted.items() if held.get(pid, 0) + quantity > limit)
    if over:
        raise Conflict(
            f"Unpaid orders would hold more than {limit} units of product(s) {', '.join(map(str, over))}; "
            "pay or cancel an open order first."
        )
