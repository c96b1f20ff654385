"""Periodic reconciliation: orders and the catalog's reservations compared in both directions.

Acknowledged delivery (the outbox re-drive) makes every saga message reach its consumer; this is
the second line, for what no message covers: a state changed by hand, a bug, a message settled by
support, an answer lost before acknowledgements existed. It reads reservations through the
catalog's internal endpoint and repairs through the saga's own messages (idempotent by order id on
the catalog side), so a repair is never a second source of truth.

=====================  =====================================  ========================================
order                  reservation                            repair (``kind``)
=====================  =====================================  ========================================
pending                any / none                             ask again: ``reserve_resent``
reserved               none                                   ask again: ``reserve_resent``
reserved               released / rejected                    cancel the order: ``cancelled_hold_gone``
reserved               committed                              flag for support: ``flagged_committed_unpaid``
paid, not committed    committed                              stamp it: ``commit_stamped``
paid, not committed    held / released / none                 commit again: ``commit_resent``
cancelled / rejected   held / committed                       release again: ``release_resent``
(no live order)        held                                   release it: ``orphan_hold_released``
=====================  =====================================  ========================================

Each repair is counted (``bazaar_reconciliation_repairs_total{kind}``), logged, written to the
order's timeline and listed for support (:class:`ReconciliationRepair` in the admin).
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from redis.exceptions import RedisError

from bazaar_common import contracts
from bazaar_common.outbox.metrics import RECONCILIATION_REPAIRS
from bazaar_common.outbox.services import outbox_enqueue
from order_service.orders import clients
from order_service.orders.models import Order, OrderStatus, ReconciliationRepair
from order_service.orders.services import order_flag_for_support
from order_service.orders.state_machine import order_record_event, order_transition

logger = logging.getLogger(__name__)
S = OrderStatus
ACTOR = "system:reconciliation"
STOCK_OWNED = (S.PAID, S.SHIPPED, S.DELIVERED)


Cursor = tuple[datetime, uuid.UUID]
CURSOR_CACHE_KEY = "orders:reconcile:cursor"


def orders_to_reconcile(*, now, limit: int, after: Cursor | None = None) -> list[Cursor]:
    """Orders idle long enough whose stock the catalog should hold, have taken or have given back,
    oldest first, from just after ``after``: ``(updated_at, id)`` of each, the walk's cursor."""
    idle_before = now - timedelta(seconds=settings.ORDER_RECONCILE_MIN_AGE_SECONDS)
    window_start = now - timedelta(seconds=settings.ORDER_RECONCILE_WINDOW_SECONDS)
    waiting = Q(status__in=[S.PENDING, S.RESERVED])
    uncommitted = Q(status__in=STOCK_OWNED, stock_committed_at__isnull=True, support_flag="")
    unreleased = Q(status__in=[S.CANCELLED, S.REJECTED], stock_released_at__isnull=True, updated_at__gte=window_start)
    candidates = Order.objects.filter(waiting | uncommitted | unreleased, updated_at__lte=idle_before)
    if after is not None:
        candidates = candidates.filter(Q(updated_at__gt=after[0]) | Q(updated_at=after[0], id__gt=after[1]))
    return list(candidates.order_by("updated_at", "id").values_list("updated_at", "id")[:limit])


def _repair(order: Order | None, *, order_id: str, kind: str, reservation: str, detail: str) -> ReconciliationRepair:
    RECONCILIATION_REPAIRS.labels(kind=kind).inc()
    logger.warning(
        "reconciliation repair",
        extra={"order_id": order_id, "kind": kind, "reservation": reservation, "detail": detail},
    )
    if order is not None:
        order_record_event(order, kind="reconciled", actor=ACTOR, reason=f"{kind}: {detail}")
        # Idle again from now: the repair gets a full round-trip before the order is looked at again.
        order.save(update_fields=["updated_at"])
    return ReconciliationRepair.objects.create(
        order_id=order_id,
        kind=kind,
        order_status=order.status if order is not None else "",
        reservation_status=reservation,
        detail=detail[:255],
    )


def _reserve_again(order: Order) -> None:
    outbox_enqueue(
        contracts.ReserveStock(
            order_id=str(order.id),
            lines=[
                contracts.StockLine(product_id=line.product_id, quantity=line.quantity)
                for line in order.lines.order_by("product_id")
            ],
            expires_in_seconds=settings.CATALOG_RESERVATION_SECONDS,
        )
    )


def _reconcile_order(order: Order, state: clients.ReservationState | None) -> ReconciliationRepair | None:
    """Compare one locked order with its reservation; repair and return what was done, or None."""
    held = state.status if state is not None else "none"
    order_id = str(order.id)
    if order.status == S.PENDING or (order.status == S.RESERVED and state is None):
        _reserve_again(order)
        return _repair(order, order_id=order_id, kind="reserve_resent", reservation=held, detail="Asked again.")
    if order.status == S.RESERVED and held in ("released", "rejected"):
        order_transition(order, to=S.CANCELLED, actor=ACTOR, reason="The catalog holds no stock for it.")
        return _repair(order, order_id=order_id, kind="cancelled_hold_gone", reservation=held, detail="Cancelled.")
    if order.status == S.RESERVED and held == "committed":
        order_flag_for_support(order, reason="The catalog committed the stock of an unpaid order.")
        return _repair(order, order_id=order_id, kind="flagged_committed_unpaid", reservation=held, detail="Flagged.")
    if order.status in STOCK_OWNED and order.stock_committed_at is None:
        if held == "committed":
            order.stock_committed_at = timezone.now()
            order.save(update_fields=["stock_committed_at", "updated_at"])
            return _repair(order, order_id=order_id, kind="commit_stamped", reservation=held, detail="Stamped.")
        outbox_enqueue(contracts.CommitReservation(order_id=order_id))
        return _repair(order, order_id=order_id, kind="commit_resent", reservation=held, detail="Commit asked again.")
    if order.status in (S.CANCELLED, S.REJECTED) and order.stock_released_at is None:
        if held in ("held", "committed"):
            outbox_enqueue(contracts.ReleaseReservation(order_id=order_id, reason="Reconciliation: order not live."))
            return _repair(order, order_id=order_id, kind="release_resent", reservation=held, detail="Released.")
        order.stock_released_at = timezone.now()  # nothing held: agreed, no repair
        order.save(update_fields=["stock_released_at", "updated_at"])
    return None


def orders_reconcile(*, now=None) -> list[ReconciliationRepair]:
    """One reconciliation round (both directions); returns the repairs made.

    A round walks the candidates in batches, oldest first, up to ``ORDER_RECONCILE_MAX_BATCHES``,
    and the next round resumes where it stopped: agreeing orders (reserved and held, awaiting
    payment, many at a time) are never touched, so a round that always began at the oldest would
    look at the same first batch for good and never reach an order behind them."""
    now = now or timezone.now()
    repairs: list[ReconciliationRepair] = []
    cursor = _saved_cursor()
    for _ in range(settings.ORDER_RECONCILE_MAX_BATCHES):
        batch = orders_to_reconcile(now=now, limit=settings.ORDER_RECONCILE_BATCH_SIZE, after=cursor)
        repairs.extend(_reconcile_batch([order_id for _, order_id in batch], now=now))
        # A short batch is the end of the walk: the next round starts again at the oldest.
        cursor = batch[-1] if len(batch) == settings.ORDER_RECONCILE_BATCH_SIZE else None
        if cursor is None:
            break
    _save_cursor(cursor)
    repairs.extend(_release_orphan_holds())
    return repairs


def _saved_cursor() -> Cursor | None:
    try:
        saved = cache.get(CURSOR_CACHE_KEY)
    except RedisError:  # the cache is down: start at the oldest (a full walk loses nothing)
        return None
    if not saved:
        return None
    updated_at, order_id = saved
    return datetime.fromisoformat(updated_at), uuid.UUID(order_id)


def _save_cursor(cursor: Cursor | None) -> None:
    value = None if cursor is None else (cursor[0].isoformat(), str(cursor[1]))
    try:
        cache.set(CURSOR_CACHE_KEY, value, timeout=settings.ORDER_RECONCILE_WINDOW_SECONDS)
    except RedisError:
        logger.warning("reconciliation cursor not saved: the next round starts at the oldest")


def _reconcile_batch(candidates: list[uuid.UUID], *, now) -> list[ReconciliationRepair]:
    if not candidates:
        return []
    repairs: list[ReconciliationRepair] = []
    states = clients.catalog_reservations(order_ids=[str(order_id) for order_id in candidates])
    for order_id in candidates:
        with transaction.atomic():
            order = Order.objects.select_for_update().filter(pk=order_id).first()
            idle_before = now - timedelta(seconds=settings.ORDER_RECONCILE_MIN_AGE_SECONDS)
            if order is None or order.updated_at > idle_before:
                continue  # it moved meanwhile: the saga is at work, look again next round
            repair = _reconcile_order(order, states.get(str(order_id)))
            if repair is not None:
                repairs.append(repair)
    return repairs


def _release_orphan_holds() -> list[ReconciliationRepair]:
    """Held reservations whose order is gone, cancelled or rejected: give the stock back."""
    repairs = []
    idle = clients.catalog_reservations_held_idle(idle_seconds=settings.ORDER_RECONCILE_MIN_AGE_SECONDS)
    for state in idle:
        with transaction.atomic():
            try:
                order = Order.objects.select_for_update().filter(pk=uuid.UUID(state.order_id)).first()
            except ValueError:
                order = None
            if order is not None and order.status not in (S.CANCELLED, S.REJECTED):
                continue  # a live order: held is right (or the order side's pass handles it)
            outbox_enqueue(
                contracts.ReleaseReservation(order_id=state.order_id, reason="Reconciliation: no live order.")
            )
            detail = "No such order." if order is None else f"Order is {order.status}."
            repairs.append(
                _repair(
                    order,
                    order_id=state.order_id if order is not None else _uuid_or_nil(state.order_id),
                    kind="orphan_hold_released",
                    reservation="held",
                    detail=detail,
                )
            )
    return repairs


def _uuid_or_nil(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return str(uuid.UUID(int=0))
