"""Stock writes: adjustments, and the order saga's reserve / commit / release, and the question
asked about an overdue hold.

Locking order, everywhere: the reservation row first, then stock rows in primary-key (product id)
order. Two transactions therefore never wait on each other in a cycle. Every change of a stock row
writes a ledger row in the same transaction, so ``sum(deltas)`` always equals the current numbers.
Replies to the order service leave through the outbox in the same transaction as the change.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from bazaar_common import contracts
from bazaar_common.domain import InvalidInput
from bazaar_common.outbox.services import outbox_enqueue
from catalog_service.inventory.models import Reservation, ReservationLine, Stock, StockMovement
from catalog_service.products.cache import catalog_changed
from catalog_service.products.models import Product

logger = logging.getLogger(__name__)

SAGA_ACTOR = "service:orders"
REJECT_OUT_OF_STOCK = contracts.RejectReason.OUT_OF_STOCK
REJECT_UNAVAILABLE = contracts.RejectReason.UNAVAILABLE_PRODUCTS
REJECT_INVALID = contracts.RejectReason.INVALID_REQUEST
REJECT_EXPIRED = contracts.RejectReason.EXPIRED


# SAGA_TRANSACTIONS: the saga's handlers run inside the transaction of the consumer that records the
# message as processed (bazaar_common.outbox.consumers), and every error they raise aborts that whole
# delivery; so they open no savepoint of their own (two round trips less per message), and are
# atomic all the same when called on their own.


class StockInvariantBroken(Exception):
    """A conditional stock update matched no row although the locked row said it would."""


def _record(
    *,
    stock: Stock,
    delta_on_hand: int,
    delta_reserved: int,
    reason: str,
    actor: str,
    order_id: str = "",
    note: str = "",
) -> StockMovement:
    return StockMovement.objects.create(
        product_id=stock.product_id,
        delta_on_hand=delta_on_hand,
        delta_reserved=delta_reserved,
        on_hand_after=stock.on_hand,
        reserved_after=stock.reserved,
        reason=reason,
        actor=actor[:100],
        order_id=order_id,
        note=note[:500],
    )


def _apply(stock: Stock, *, delta_on_hand: int, delta_reserved: int) -> None:
    """Change a locked stock row, guarded again by the database (F() and a WHERE on the result)."""
    updated = Stock.objects.filter(
        Q(pk=stock.pk),
        Q(on_hand__gte=-delta_on_hand),
        Q(reserved__gte=-delta_reserved),
        # reserved <= on_hand afterwards, i.e. on_hand - reserved >= delta_reserved - delta_on_hand
        Q(on_hand__gte=F("reserved") + (delta_reserved - delta_on_hand)),
    ).update(
        on_hand=F("on_hand") + delta_on_hand,
        reserved=F("reserved") + delta_reserved,
        updated_at=timezone.now(),
    )
    if updated != 1:
        raise StockInvariantBroken(f"stock {stock.pk} cannot take {delta_on_hand:+}/{delta_reserved:+}")
    stock.on_hand += delta_on_hand
    stock.reserved += delta_reserved


def _lock_stocks(product_ids: list[int]) -> dict[int, Stock]:
    stocks = Stock.objects.select_for_update().filter(product_id__in=product_ids).order_by("product_id")
    return {stock.product_id: stock for stock in stocks}


def stock_initialize(*, product: Product, on_hand: int, actor: str, reason: str = "initial") -> Stock:
    """The stock row of a new product, with its first ledger row."""
    with transaction.atomic():
        stock = Stock.objects.create(product=product, on_hand=on_hand, reserved=0)
        if on_hand:
            _record(stock=stock, delta_on_hand=on_hand, delta_reserved=0, reason=reason, actor=actor)
        catalog_changed(product_ids=[product.pk])
    return stock


def stock_adjust(*, product_id: int, delta: int, actor: str, note: str, reason: str = "adjustment") -> Stock:
    """Add ``delta`` (negative removes) to on-hand stock; never below what is reserved."""
    with transaction.atomic():
        stock = _lock_stocks([product_id]).get(product_id)
        if stock is None:
            stock = Stock.objects.create(product_id=product_id)
            stock = _lock_stocks([product_id])[product_id]
        if delta == 0:
            raise InvalidInput({"delta": ["The adjustment must not be zero."]})
        if stock.on_hand + delta < stock.reserved:
            raise InvalidInput(
                {
                    "delta": [
                        f"On hand would be {stock.on_hand + delta}, below the {stock.reserved} "
                        f"units reserved for orders (on hand {stock.on_hand})."
                    ]
                }
            )
        _apply(stock, delta_on_hand=delta, delta_reserved=0)
        _record(stock=stock, delta_on_hand=delta, delta_reserved=0, reason=reason, actor=actor, note=note)
        catalog_changed(product_ids=[product_id])
    return stock


def stock_set_on_hand(*, product_id: int, on_hand: int, actor: str, note: str, reason: str) -> Stock:
    """Set on-hand to an absolute count (a stock take, a CSV import) through a ledgered delta."""
    with transaction.atomic():
        stock = _lock_stocks([product_id]).get(product_id)
        if stock is None:
            Stock.objects.create(product_id=product_id)
            stock = _lock_stocks([product_id])[product_id]
        delta = on_hand - stock.on_hand
        if delta == 0:
            return stock
        return stock_adjust(product_id=product_id, delta=delta, actor=actor, note=note, reason=reason)


# --- The order saga ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ReserveOutcome:
    """What a reserve request did: ``reserved``, ``rejected`` or ``duplicate`` (nothing)."""

    result: str
    reason: str = ""
    shortages: list[dict[str, Any]] = field(default_factory=list)


def _merge_lines(lines: list[dict[str, Any]]) -> dict[int, int] | None:
    """``{product_id: quantity}`` with duplicate products summed, or None if a line is malformed."""
    merged: dict[int, int] = {}
    for line in lines:
        if not isinstance(line, dict):
            return None
        product_id, quantity = line.get("product_id"), line.get("quantity")
        if isinstance(product_id, bool) or isinstance(quantity, bool):
            return None
        if not isinstance(product_id, int) or not isinstance(quantity, int) or quantity < 1:
            return None
        merged[product_id] = merged.get(product_id, 0) + quantity
    return merged or None


def _reject(
    reservation: Reservation, *, reason: contracts.RejectReason, shortages: list[dict[str, Any]]
) -> ReserveOutcome:
    reservation.status = Reservation.Status.REJECTED
    reservation.rejection = {"reason": reason, "shortages": shortages}
    reservation.save(update_fields=["status", "rejection", "updated_at"])
    outbox_enqueue(
        contracts.StockRejected(
            order_id=reservation.order_id,
            reason=reason,
            shortages=[contracts.Shortage(**shortage) for shortage in shortages],
        )
    )
    return ReserveOutcome(result="rejected", reason=reason, shortages=shortages)


def _unavailable_lines(wanted: dict[int, int]) -> list[dict[str, Any]]:
    products = {
        product.pk: product
        for product in Product.objects.filter(pk__in=wanted)
        .select_related("merchant")
        .only("pk", "is_active", "merchant__is_active")
    }
    problems = []
    for product_id in sorted(wanted):
        product = products.get(product_id)
        if product is None:
            problem = "unknown"
        elif not (product.is_active and product.merchant.is_active):
            problem = "inactive"
        else:
            continue
        problems.append({"product_id": product_id, "requested": wanted[product_id], "available": 0, "problem": problem})
    return problems


def _expires_at(expires_in_seconds: Any) -> datetime:
    seconds = expires_in_seconds if isinstance(expires_in_seconds, int) and expires_in_seconds > 0 else 900
    return timezone.now() + timedelta(seconds=min(seconds, settings.INVENTORY_MAX_RESERVATION_SECONDS))


def _answer_again(order_id: str) -> None:
    """A repeated reserve request (the order service re-asking after a lost answer): answer with
    what is already decided, changing nothing."""
    reservation = Reservation.objects.filter(order_id=order_id).first()
    if reservation is None:
        return
    if reservation.status in (Reservation.Status.HELD, Reservation.Status.COMMITTED):
        outbox_enqueue(contracts.StockReserved(order_id=order_id))
    elif reservation.status == Reservation.Status.REJECTED and reservation.rejection.get("reason"):
        outbox_enqueue(
            contracts.StockRejected(
                order_id=order_id,
                reason=contracts.RejectReason(reservation.rejection["reason"]),
                shortages=[contracts.Shortage(**s) for s in reservation.rejection.get("shortages", [])],
            )
        )
    elif reservation.status == Reservation.Status.RELEASED and reservation.release_reason == REJECT_EXPIRED:
        outbox_enqueue(contracts.StockRejected(order_id=order_id, reason=REJECT_EXPIRED))


def reservation_reserve(
    *, order_id: str, lines: list[dict[str, Any]], expires_in_seconds: int = 900, actor: str = SAGA_ACTOR
) -> ReserveOutcome:
    """Hold every line for ``order_id`` or none; reply StockReserved / StockRejected via the outbox.

    Idempotent by order id: the reservation row is unique per order, so a second request for the
    same order (another message, a redelivery) finds it and changes nothing.
    """
    with transaction.atomic(savepoint=False):  # see SAGA_TRANSACTIONS
        try:
            with transaction.atomic():
                reservation = Reservation.objects.create(
                    order_id=order_id,
                    status=Reservation.Status.HELD,
                    expires_at=_expires_at(expires_in_seconds),
                )
        except IntegrityError:
            logger.info("reservation for this order exists; answering again", extra={"order_id": order_id})
            _answer_again(order_id)
            return ReserveOutcome(result="duplicate")

        wanted = _merge_lines(lines) if isinstance(lines, list) else None
        if wanted is None:
            return _reject(reservation, reason=REJECT_INVALID, shortages=[])
        unavailable = _unavailable_lines(wanted)
        if unavailable:
            return _reject(reservation, reason=REJECT_UNAVAILABLE, shortages=unavailable)

        stocks = _lock_stocks(sorted(wanted))
        shortages = [
            {
                "product_id": product_id,
                "requested": quantity,
                "available": stocks[product_id].available if product_id in stocks else 0,
            }
            for product_id, quantity in sorted(wanted.items())
            if product_id not in stocks or stocks[product_id].available < quantity
        ]
        if shortages:
            return _reject(reservation, reason=REJECT_OUT_OF_STOCK, shortages=shortages)

        for product_id, quantity in sorted(wanted.items()):
            stock = stocks[product_id]
            _apply(stock, delta_on_hand=0, delta_reserved=quantity)
            _record(
                stock=stock,
                delta_on_hand=0,
                delta_reserved=quantity,
                reason=StockMovement.Reason.RESERVE,
                actor=actor,
                order_id=order_id,
            )
        ReservationLine.objects.bulk_create(
            ReservationLine(reservation=reservation, product_id=product_id, quantity=quantity)
            for product_id, quantity in sorted(wanted.items())
        )
        outbox_enqueue(contracts.StockReserved(order_id=order_id))
        catalog_changed(product_ids=wanted)
    return ReserveOutcome(result="reserved")


def _lock_reservation(order_id: str, *, skip_locked: bool = False) -> Reservation | None:
    queryset = Reservation.objects.filter(order_id=order_id)
    if skip_locked and connection.features.has_select_for_update_skip_locked:
        return queryset.select_for_update(skip_locked=True).first()
    return queryset.select_for_update().first()


def _release_held(reservation: Reservation, *, reason: str, movement_reason: str, actor: str) -> None:
    lines = list(reservation.lines.order_by("product_id"))
    stocks = _lock_stocks([line.product_id for line in lines])
    for line in lines:
        stock = stocks[line.product_id]
        _apply(stock, delta_on_hand=0, delta_reserved=-line.quantity)
        _record(
            stock=stock,
            delta_on_hand=0,
            delta_reserved=-line.quantity,
            reason=movement_reason,
            actor=actor,
            order_id=reservation.order_id,
            note=reason,
        )
    reservation.status = Reservation.Status.RELEASED
    reservation.release_reason = reason[:200]
    reservation.save(update_fields=["status", "release_reason", "updated_at"])
    catalog_changed(product_ids=[line.product_id for line in lines])


def _take_for_commit(reservation: Reservation, *, lines: list[ReservationLine], held: bool, actor: str) -> bool:
    """Take the reservation's units out of on-hand stock: from the hold (``held``), or straight
    from what is available (a hold that expired before its order's payment was confirmed).
    False, changing nothing, when an expired hold's units are not available any more."""
    stocks = _lock_stocks([line.product_id for line in lines])
    if not held and any(
        line.product_id not in stocks or stocks[line.product_id].available < line.quantity for line in lines
    ):
        return False
    delta_reserved_sign = -1 if held else 0
    for line in lines:
        stock = stocks[line.product_id]
        _apply(stock, delta_on_hand=-line.quantity, delta_reserved=delta_reserved_sign * line.quantity)
        _record(
            stock=stock,
            delta_on_hand=-line.quantity,
            delta_reserved=delta_reserved_sign * line.quantity,
            reason=StockMovement.Reason.COMMIT,
            actor=actor,
            order_id=reservation.order_id,
            note="" if held else "Taken again: the hold had expired before the payment was confirmed.",
        )
    reservation.status = Reservation.Status.COMMITTED
    reservation.save(update_fields=["status", "updated_at"])
    catalog_changed(product_ids=[line.product_id for line in lines])
    return True


def _commit_outcome(reservation: Reservation | None, *, actor: str) -> contracts.CommitOutcome:
    Outcome = contracts.CommitOutcome
    if reservation is None:
        return Outcome.FAILED
    if reservation.status == Reservation.Status.COMMITTED:
        return Outcome.COMMITTED  # a repeated commit: answer again, change nothing
    lines = list(reservation.lines.order_by("product_id"))
    if reservation.status == Reservation.Status.HELD:
        _take_for_commit(reservation, lines=lines, held=True, actor=actor)
        return Outcome.COMMITTED
    expired = reservation.status == Reservation.Status.RELEASED and reservation.release_reason == REJECT_EXPIRED
    if expired and lines and _take_for_commit(reservation, lines=lines, held=False, actor=actor):
        return Outcome.RECOMMITTED
    return Outcome.FAILED


def reservation_commit(*, order_id: str, actor: str = SAGA_ACTOR) -> contracts.CommitOutcome:
    """The order was paid: the held units leave on-hand stock; the answer (StockCommitted) says how.

    A paid order's stock is never left on sale: a hold that expired before the commit came is
    taken again from available stock (``recommitted``); when that is impossible the answer is
    ``failed`` and the order service flags the order for support at once.
    """
    with transaction.atomic(savepoint=False):  # see SAGA_TRANSACTIONS
        reservation = _lock_reservation(order_id)
        outcome = _commit_outcome(reservation, actor=actor)
        if outcome == contracts.CommitOutcome.FAILED:
            logger.error(
                "commit impossible: the paid order's stock is not held",
                extra={"order_id": order_id, "status": reservation.status if reservation else "missing"},
            )
        outbox_enqueue(contracts.StockCommitted(order_id=order_id, outcome=outcome))
    return outcome


def reservation_release(*, order_id: str, reason: str, actor: str = SAGA_ACTOR) -> contracts.ReleaseOutcome:
    """The order was cancelled or rejected: give the stock back; the answer (StockReleased) says how.

    A release for an order never reserved leaves a released tombstone, so a reserve request that
    arrives late for that order changes nothing. A committed (paid) order that is cancelled puts
    its units back on hand.
    """
    with transaction.atomic(savepoint=False):  # see SAGA_TRANSACTIONS
        outcome = _release(order_id=order_id, reason=reason, actor=actor)
        outbox_enqueue(contracts.StockReleased(order_id=order_id, outcome=outcome))
    return outcome


def _release(*, order_id: str, reason: str, actor: str) -> contracts.ReleaseOutcome:
    Outcome = contracts.ReleaseOutcome
    reservation = _lock_reservation(order_id)
    if reservation is None:
        try:
            with transaction.atomic():
                Reservation.objects.create(
                    order_id=order_id, status=Reservation.Status.RELEASED, release_reason=reason[:200]
                )
        except IntegrityError:  # a reserve for it just committed: release that one
            return _release(order_id=order_id, reason=reason, actor=actor)
        return Outcome.NOTHING_HELD
    if reservation.status == Reservation.Status.HELD:
        _release_held(reservation, reason=reason, movement_reason=StockMovement.Reason.RELEASE, actor=actor)
        return Outcome.RELEASED
    if reservation.status == Reservation.Status.COMMITTED:
        _restock_committed(reservation, reason=reason, actor=actor)
        return Outcome.RESTOCKED
    return Outcome.NOTHING_HELD


def _restock_committed(reservation: Reservation, *, reason: str, actor: str) -> None:
    lines = list(reservation.lines.order_by("product_id"))
    stocks = _lock_stocks([line.product_id for line in lines])
    for line in lines:
        stock = stocks[line.product_id]
        _apply(stock, delta_on_hand=line.quantity, delta_reserved=0)
        _record(
            stock=stock,
            delta_on_hand=line.quantity,
            delta_reserved=0,
            reason=StockMovement.Reason.RESTOCK,
            actor=actor,
            order_id=reservation.order_id,
            note=reason,
        )
    reservation.status = Reservation.Status.RELEASED
    reservation.release_reason = reason[:200]
    reservation.save(update_fields=["status", "release_reason", "updated_at"])
    catalog_changed(product_ids=[line.product_id for line in lines])


def _reask_before(now: datetime) -> datetime:
    return now - timedelta(seconds=settings.INVENTORY_EXPIRY_REASK_SECONDS)


def _overdue_unasked(now: datetime) -> Q:
    """Held past its time and not asked about lately (never, or before the re-ask interval)."""
    return Q(status=Reservation.Status.HELD, expires_at__lte=now) & (
        Q(expiry_asked_at__isnull=True) | Q(expiry_asked_at__lte=_reask_before(now))
    )


def reservation_ask_expiry(*, order_id: str) -> bool:
    """Ask the order service whether one overdue hold may go (HoldExpiring); True when asked now.

    The hold stays held: the catalog never puts units back on sale on its own clock, because the
    order may be paid with its commit still on the way (a slow payment, a broker outage). The order
    service answers with a commit or a release, decided under the order's lock. Asked again every
    ``INVENTORY_EXPIRY_REASK_SECONDS`` while the hold is still held (an order inside its payment
    window keeps it; a question lost for good is asked again).
    """
    with transaction.atomic():
        reservation = _lock_reservation(order_id, skip_locked=True)
        now = timezone.now()
        if (
            reservation is None
            or reservation.status != Reservation.Status.HELD
            or reservation.expires_at is None
            or reservation.expires_at > now
            or (reservation.expiry_asked_at is not None and reservation.expiry_asked_at > _reask_before(now))
        ):
            return False
        reservation.expiry_asked_at = now
        reservation.save(update_fields=["expiry_asked_at", "updated_at"])
        outbox_enqueue(contracts.HoldExpiring(order_id=order_id))
    return True


def reservations_expire_overdue(*, limit: int | None = None) -> int:
    """Ask about every held reservation past its time limit, one transaction each; returns how many."""
    batch = limit or settings.INVENTORY_EXPIRY_BATCH_SIZE
    order_ids = list(
        Reservation.objects.filter(_overdue_unasked(timezone.now()))
        .order_by("expires_at")
        .values_list("order_id", flat=True)[:batch]
    )
    return sum(1 for order_id in order_ids if reservation_ask_expiry(order_id=order_id))
