"""The order state machine: the one place that knows which status may follow which.

::

    pending ──► reserved ──► paid ──► shipped ──► delivered
       │  │        │          │
       │  └► rejected         │
       └────────┴─────────────┴──► cancelled

Every status change goes through :func:`order_transition`, which refuses an illegal one with 409,
stamps the matching timestamp and writes the timeline entry. The caller holds the order's row lock
(``select_for_update``) inside its transaction.
"""

from __future__ import annotations

from django.utils import timezone

from bazaar_common.errors import Conflict
from order_service.orders.metrics import count_transition
from order_service.orders.models import Order, OrderEvent, OrderStatus

S = OrderStatus

ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    S.PENDING: frozenset({S.RESERVED, S.REJECTED, S.CANCELLED}),
    S.RESERVED: frozenset({S.PAID, S.CANCELLED}),
    S.PAID: frozenset({S.SHIPPED, S.CANCELLED}),
    S.SHIPPED: frozenset({S.DELIVERED}),
    S.DELIVERED: frozenset(),
    S.REJECTED: frozenset(),
    S.CANCELLED: frozenset(),
}

# The timestamp each status stamps on the order when it is entered.
_STAMPS: dict[str, str] = {
    S.RESERVED: "reserved_at",
    S.PAID: "paid_at",
    S.SHIPPED: "shipped_at",
    S.DELIVERED: "delivered_at",
    S.CANCELLED: "cancelled_at",
}

CANCELLABLE = frozenset(status for status, targets in ALLOWED_TRANSITIONS.items() if S.CANCELLED in targets)


class IllegalTransition(Conflict):
    default_code = "illegal_transition"


def can_transition(current: str, target: str) -> bool:
    return target in ALLOWED_TRANSITIONS.get(current, frozenset())


def order_transition(
    order: Order,
    *,
    to: str,
    actor: str,
    reason: str = "",
    extra_fields: tuple[str, ...] = (),
) -> OrderEvent:
    """Move ``order`` to status ``to`` (or raise 409) and record who did it and why."""
    if not can_transition(order.status, to):
        raise IllegalTransition(f"An order that is {order.status} cannot become {to}.")
    previous = order.status
    order.status = to
    fields = ["status", "updated_at", *extra_fields]
    stamp = _STAMPS.get(to)
    if stamp is not None:
        setattr(order, stamp, timezone.now())
        fields.append(stamp)
    order.save(update_fields=fields)
    count_transition(previous, to)
    return OrderEvent.objects.create(
        order=order, kind="status", from_status=previous, to_status=to, actor=actor, reason=reason
    )


def order_record_event(order: Order, *, kind: str, actor: str, reason: str = "") -> OrderEvent:
    """A timeline entry that is not a status change (a refund, a declined payment)."""
    return OrderEvent.objects.create(
        order=order, kind=kind, from_status=order.status, to_status=order.status, actor=actor, reason=reason
    )
