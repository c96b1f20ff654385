"""Business limits on what one order, one cart line and one customer may hold.

They are checked on the lines as they will be ordered — explicit items or the cart, however the
cart was built — so two cart adds of 1,000 never make a line of 2,000. The cap on unpaid holds
keeps one account from holding a product's whole stock for the payment window (anti-scalping). It
is checked twice: early, before the catalog is asked for prices (a cheap refusal), and again in
the transaction that writes the order, after :func:`unpaid_holds_lock` has serialised this
customer's checkouts of these products — so of two racing checkouts the second sees the first's
lines and is refused (tests/order_service/test_orders_concurrency.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import connection
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


def _hold_lock_key(customer_id: str, product_id: int) -> int:
    digest = hashlib.blake2b(f"unpaid-hold:{customer_id}:{product_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def unpaid_holds_lock(*, customer_id: str, product_ids: Iterable[int]) -> None:
    """In the caller's transaction: wait for, then hold until it ends, the lock of each (customer,
    product) pair, so one customer's checkouts of a product are written one after the other.

    PostgreSQL transaction-level advisory locks, taken in key order (two checkouts sharing several
    products never wait on each other in a circle); a hash collision only serialises two unrelated
    pairs. Other databases (SQLite in development) let one writing transaction in at a time anyway.
    """
    if connection.vendor != "postgresql":
        return
    keys = sorted({_hold_lock_key(str(customer_id), int(product_id)) for product_id in product_ids})
    with connection.cursor() as cursor:
        for key in keys:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])
