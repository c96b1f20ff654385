"""Writes: the cart, checkout, the saga's replies, payment, cancellation, shipping, expiry, erasure.

Every status change goes through :func:`~order_service.orders.state_machine.order_transition` under
the order's row lock; every message to the catalog leaves through the outbox in the same
transaction as the change it announces.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from bazaar_common import contracts
from bazaar_common.domain import InvalidInput, NotFound
from bazaar_common.errors import Conflict, GatewayTimeout, Unprocessable
from bazaar_common.outbox.services import outbox_enqueue
from order_service.orders import clients, limits
from order_service.orders.metrics import count_hold_expiry_decision
from order_service.orders.models import (
    Cart,
    CartItem,
    Order,
    OrderLine,
    OrderStatus,
    PaymentAttempt,
    PaymentStatus,
)
from order_service.orders.payments import PaymentTimeout, payment_provider
from order_service.orders.state_machine import (
    IllegalTransition,
    order_record_event,
    order_transition,
)

logger = logging.getLogger(__name__)
S = OrderStatus
ACTOR_CATALOG = "service:catalog"
ACTOR_EXPIRY = "system:expiry"
# The reason the catalog gives when its own time limit released a held reservation.
CATALOG_HOLD_EXPIRED = contracts.RejectReason.EXPIRED
# The rejection reason of an order whose reserve request the catalog never acknowledged.
NO_ANSWER_FROM_CATALOG = "no_answer_from_catalog"


# SAGA_TRANSACTIONS: the saga's handlers run inside the transaction of the consumer that records the
# message as processed (bazaar_common.outbox.consumers), and every error they raise aborts that whole
# delivery; so they open no savepoint of their own (two round trips less per message), and are
# atomic all the same when called on their own.


# --- Cart ------------------------------------------------------------------------------------------


def _check_products_for_sale(product_ids: list[int], *, field_for: dict[int, str]) -> clients.ProductLookup:
    """Ask the catalog about ``product_ids``; 400 naming each unknown or inactive one."""
    lookup = clients.catalog_products(product_ids=product_ids)
    errors = []
    for product_id in product_ids:
        product = lookup.found.get(product_id)
        if product_id in lookup.missing or product is None:
            errors.append((field_for[product_id], f"Product {product_id} does not exist."))
        elif not product.is_active:
            errors.append((field_for[product_id], f"Product {product_id} is not for sale."))
    if errors:
        raise InvalidInput({field: [reason] for field, reason in errors})
    return lookup


def cart_item_add(*, customer_id: str, product_id: int, quantity: int) -> Cart:
    """Add ``quantity`` of a product to the customer's cart (adding to a line already there)."""
    _check_products_for_sale([product_id], field_for={product_id: "product_id"})
    with transaction.atomic():
        cart, _ = Cart.objects.get_or_create(customer_id=customer_id)
        cart = Cart.objects.select_for_update().get(pk=cart.pk)
        item = CartItem.objects.filter(cart=cart, product_id=product_id).first()
        if item is None:
            CartItem.objects.create(cart=cart, product_id=product_id, quantity=quantity)
        else:
            item.quantity += quantity
            limits.line_quantity_check(item.quantity, field="quantity")
            item.save(update_fields=["quantity"])
        cart.save(update_fields=["updated_at"])
    return cart


def _cart_item(*, customer_id: str, product_id: int) -> CartItem:
    item = CartItem.objects.select_for_update().filter(cart__customer_id=customer_id, product_id=product_id).first()
    if item is None:
        raise NotFound(f"Product {product_id} is not in the cart.")
    return item


def cart_item_set_quantity(*, customer_id: str, product_id: int, quantity: int) -> None:
    with transaction.atomic():
        item = _cart_item(customer_id=customer_id, product_id=product_id)
        item.quantity = quantity
        item.save(update_fields=["quantity"])


def cart_item_remove(*, customer_id: str, product_id: int) -> None:
    with transaction.atomic():
        _cart_item(customer_id=customer_id, product_id=product_id).delete()


def cart_empty(*, customer_id: str) -> None:
    with transaction.atomic():
        CartItem.objects.filter(cart__customer_id=customer_id).delete()


# --- Checkout --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckoutResult:
    order: Order
    replayed: bool


def _order_for_idempotency_key(*, customer_id: str, key: str, fingerprint: str) -> Order | None:
    order = Order.objects.filter(customer_id=customer_id, idempotency_key=key).first()
    if order is not None and order.request_fingerprint != fingerprint:
        raise Unprocessable(
            "This Idempotency-Key was already used with a different request body.",
        )
    return order


def _requested_lines(*, customer_id: str, items: list[dict[str, int]] | None) -> tuple[list[dict], str]:
    """The lines to buy and the name of the input they came from (for error fields)."""
    if items is not None:
        return items, "items"
    cart_items = CartItem.objects.filter(cart__customer_id=customer_id).order_by("product_id")
    lines = [{"product_id": item.product_id, "quantity": item.quantity} for item in cart_items]
    if not lines:
        raise InvalidInput({"items": ["No items given and the cart is empty."]})
    return lines, "cart.items"


def _priced_lines(lines: list[dict], *, source: str) -> list[dict[str, Any]]:
    """Snapshot price, merchant, SKU and name of each line from the catalog (400 on bad lines)."""
    field_for = {line["product_id"]: f"{source}.{index}.product_id" for index, line in enumerate(lines)}
    lookup = _check_products_for_sale([line["product_id"] for line in lines], field_for=field_for)
    priced = []
    for line in lines:
        product = lookup.found[line["product_id"]]
        priced.append(
            {
                "product_id": product.id,
                "merchant_id": product.merchant_id,
                "sku": product.sku,
                "name": product.name,
                "unit_price": product.price,
                "currency": product.currency,
                "quantity": line["quantity"],
            }
        )
    currencies = {line["currency"] for line in priced}
    if len(currencies) > 1:
        raise InvalidInput({source: [f"Products in different currencies ({', '.join(sorted(currencies))})."]})
    return priced


def order_checkout(
    *,
    customer_id: str,
    customer_email: str,
    items: list[dict[str, int]] | None,
    shipping_address: dict[str, Any] | None,
    idempotency_key: str = "",
    fingerprint: str = "",
) -> CheckoutResult:
    """Create a pending order from ``items`` (or the cart) and ask the catalog to reserve it.

    Prices come from the catalog now (never from the client). With an ``idempotency_key`` a repeat
    of the same request returns the first order; a different request with that key is 422. When a
    dependency is down nothing is created (503).
    """
    if idempotency_key:
        existing = _order_for_idempotency_key(customer_id=customer_id, key=idempotency_key, fingerprint=fingerprint)
        if existing is not None:
            return CheckoutResult(order=existing, replayed=True)
    lines, source = _requested_lines(customer_id=customer_id, items=items)
    limits.order_lines_check(lines, source=source)
    limits.unpaid_holds_check(customer_id=customer_id, lines=lines)
    priced = _priced_lines(lines, source=source)
    limits.order_total_check(priced, source=source)
    if shipping_address is None:
        default_address = clients.profiles_default_shipping_address(user_id=customer_id)
        shipping_address = default_address.to_json() if default_address is not None else None
    try:
        order = _order_create(
            customer_id=customer_id,
            customer_email=customer_email,
            priced_lines=priced,
            shipping_address=shipping_address or {},
            idempotency_key=idempotency_key,
            fingerprint=fingerprint,
            empty_cart=source == "cart.items",
        )
    except IntegrityError:
        # A concurrent request with the same key won the race: answer as a replay of it.
        if not idempotency_key:
            raise
        existing = _order_for_idempotency_key(customer_id=customer_id, key=idempotency_key, fingerprint=fingerprint)
        if existing is None:
            raise
        return CheckoutResult(order=existing, replayed=True)
    return CheckoutResult(order=order, replayed=False)


def _order_create(
    *,
    customer_id: str,
    customer_email: str,
    priced_lines: list[dict[str, Any]],
    shipping_address: dict[str, Any],
    idempotency_key: str,
    fingerprint: str,
    empty_cart: bool,
) -> Order:
    subtotal = sum((line["unit_price"] * line["quantity"] for line in priced_lines), Decimal("0.00"))
    with transaction.atomic():
        # The cap on unpaid holds again, now that this customer's other checkouts of these
        # products wait for this transaction: racing checkouts cannot both pass it.
        limits.unpaid_holds_lock(customer_id=customer_id, product_ids=[line["product_id"] for line in priced_lines])
        limits.unpaid_holds_check(customer_id=customer_id, lines=priced_lines)
        order = Order.objects.create(
            customer_id=customer_id,
            customer_email=customer_email,
            currency=priced_lines[0]["currency"],
            subtotal=subtotal,
            total=subtotal,
            shipping_address=shipping_address,
            idempotency_key=idempotency_key,
            request_fingerprint=fingerprint,
        )
        OrderLine.objects.bulk_create(
            [OrderLine(order=order, **line) for line in sorted(priced_lines, key=lambda x: x["product_id"])]
        )
        order_record_event(order, kind="created", actor=customer_id, reason="Checkout.")
        outbox_enqueue(
            contracts.ReserveStock(
                order_id=str(order.id),
                # Sorted by product id so the catalog takes its row locks in one order.
                lines=[
                    contracts.StockLine(product_id=line["product_id"], quantity=line["quantity"])
                    for line in sorted(priced_lines, key=lambda x: x["product_id"])
                ],
                expires_in_seconds=settings.CATALOG_RESERVATION_SECONDS,
            )
        )
        if empty_cart:
            CartItem.objects.filter(cart__customer_id=customer_id).delete()
    return order


# --- The saga: the catalog's answers ---------------------------------------------------------------


def _locked_order(order_id: Any) -> Order:
    try:
        return Order.objects.select_for_update().get(pk=order_id)
    except (Order.DoesNotExist, ValueError, DjangoValidationError) as exc:
        raise NotFound("Order not found.") from exc


def _locked_order_or_none(order_id: Any) -> Order | None:
    try:
        return _locked_order(order_id)
    except NotFound:
        return None


def _release_stock(order: Order, *, reason: str) -> None:
    outbox_enqueue(contracts.ReleaseReservation(order_id=str(order.id), reason=reason[:500]))


def order_apply_stock_reserved(*, order_id: str) -> Order | None:
    """The catalog holds the stock: a pending order becomes reserved and its payment clock starts.

    A reply for an order that was cancelled meanwhile gives the stock straight back; any other
    repeat changes nothing.
    """
    with transaction.atomic(savepoint=False):  # see SAGA_TRANSACTIONS
        order = _locked_order_or_none(order_id)
        if order is None:
            logger.warning("stock reserved for an unknown order", extra={"order_id": order_id})
            return None
        if order.status == S.PENDING:
            order.payment_due_at = timezone.now() + timedelta(seconds=settings.ORDER_PAYMENT_TIMEOUT_SECONDS)
            order_transition(
                order,
                to=S.RESERVED,
                actor=ACTOR_CATALOG,
                reason="Stock reserved.",
                extra_fields=("payment_due_at",),
            )
        elif order.status == S.CANCELLED:
            _release_stock(order, reason="Order was cancelled before the stock was reserved.")
        return order


def order_apply_stock_rejected(*, order_id: str, reason: str, shortages: list[dict[str, Any]]) -> Order | None:
    """The catalog could not hold the stock: a pending order becomes rejected, with the reasons.

    An expiry notice for a reserved order cancels it; for a paid one (its commit not yet
    answered) the commit is asked again at once: the catalog takes the units again if it can, and
    answers ``failed`` (which flags the order for support) if it cannot.
    """
    with transaction.atomic(savepoint=False):  # see SAGA_TRANSACTIONS
        order = _locked_order_or_none(order_id)
        if order is None:
            logger.warning("stock rejected for an unknown order", extra={"order_id": order_id})
            return None
        if order.status == S.PENDING:
            order.rejection = {"reason": reason, "shortages": shortages}
            order_transition(order, to=S.REJECTED, actor=ACTOR_CATALOG, reason=reason, extra_fields=("rejection",))
        elif order.status == S.RESERVED and reason == CATALOG_HOLD_EXPIRED:
            # The catalog's own timer gave the stock back (it outlives ours, so this is rare):
            # the order cannot be paid any more.
            order_transition(order, to=S.CANCELLED, actor=ACTOR_CATALOG, reason="The stock reservation expired.")
        elif order.status in (S.PAID, S.SHIPPED) and reason == CATALOG_HOLD_EXPIRED and not order.stock_committed_at:
            logger.error("catalog expired the hold of a paid order; committing again", extra={"order_id": order_id})
            order_record_event(
                order, kind="stock_expired", actor=ACTOR_CATALOG, reason="Hold expired before commit; re-committing."
            )
            outbox_enqueue(contracts.CommitReservation(order_id=str(order.id)))
        return order


def order_apply_stock_committed(*, order_id: str, outcome: contracts.CommitOutcome) -> Order | None:
    """The catalog answered a commit: stamp it, or flag the order when its stock is not taken."""
    with transaction.atomic(savepoint=False):  # see SAGA_TRANSACTIONS
        order = _locked_order_or_none(order_id)
        if order is None:
            return None
        if outcome == contracts.CommitOutcome.FAILED:
            if order.status in (S.PAID, S.SHIPPED, S.DELIVERED):
                order_flag_for_support(order, reason="Paid, but the catalog could not commit its stock.")
            return order
        if order.stock_committed_at is None:
            order.stock_committed_at = timezone.now()
            order.save(update_fields=["stock_committed_at", "updated_at"])
            if outcome == contracts.CommitOutcome.RECOMMITTED:
                order_record_event(
                    order,
                    kind="stock_recommitted",
                    actor=ACTOR_CATALOG,
                    reason="Stock taken again after its hold expired.",
                )
        return order


def order_apply_stock_released(*, order_id: str, outcome: contracts.ReleaseOutcome) -> Order | None:
    """The catalog answered a release: the order's stock is back (or nothing was held)."""
    with transaction.atomic(savepoint=False):  # see SAGA_TRANSACTIONS
        order = _locked_order_or_none(order_id)
        if order is None:
            return None
        if order.stock_released_at is None:
            order.stock_released_at = timezone.now()
            order.save(update_fields=["stock_released_at", "updated_at"])
        return order


class HoldDecision(enum.StrEnum):
    COMMIT = "commit"  # the order is paid: its stock is committed, never put back on sale
    RELEASE = "release"  # the order cannot be paid (any more): its stock goes back on sale
    KEEP = "keep"  # still inside its payment window: the hold stays until the window closes


PAID_STATUSES = (S.PAID, S.SHIPPED, S.DELIVERED)


def order_apply_hold_expiring(*, order_id: str) -> HoldDecision:
    """The catalog's hold of this order is overdue and the catalog asks before letting it go.

    Decided under the order's row lock, the lock a payment takes to mark the order paid, so a
    payment can never land between this answer and its effect (the race of a hold's expiry with
    a payment or its commit): a paid order's commit is sent again; an order past its payment time
    (or a pending one the catalog never got through to) is cancelled here and its stock released;
    an order still inside its payment window keeps the hold, and its own expiry releases it; a
    cancelled, rejected or unknown order's stock is released (again: releases are idempotent).
    """
    with transaction.atomic():
        order = _locked_order_or_none(order_id)
        if order is None:
            outbox_enqueue(contracts.ReleaseReservation(order_id=order_id, reason="No such order."))
            decision = HoldDecision.RELEASE
        elif order.status in PAID_STATUSES:
            order_record_event(
                order, kind="hold_expiry_commit", actor=ACTOR_CATALOG, reason="Hold overdue; commit sent again."
            )
            outbox_enqueue(contracts.CommitReservation(order_id=str(order.id)))
            decision = HoldDecision.COMMIT
        elif _expire_locked(order, now=timezone.now()):
            decision = HoldDecision.RELEASE
        elif order.status in (S.PENDING, S.RESERVED):
            decision = HoldDecision.KEEP
        else:
            _release_stock(order, reason=f"Order is {order.status}.")
            decision = HoldDecision.RELEASE
        count_hold_expiry_decision(decision.value)
    logger.info("overdue hold answered", extra={"order_id": order_id, "decision": decision.value})
    return decision


def order_flag_for_support(order: Order, *, reason: str) -> None:
    """Mark an order support must look at (shown and filterable in the admin), with a timeline entry."""
    order.support_flag = reason[:255]
    order.save(update_fields=["support_flag", "updated_at"])
    order_record_event(order, kind="needs_support", actor="system:saga", reason=reason)
    logger.error("order needs support", extra={"order_id": str(order.pk), "reason": reason})


def order_settle_unanswered(*, order_id: str, step: str) -> str:
    """A saga message to the catalog was never acknowledged after its last attempt: settle safely.

    A reserve never answered rejects the pending order and sends a release (which leaves a
    tombstone, so a very late reserve cannot hold stock for it); any other step (commit, release)
    flags the order for support. Returns the outcome counted in ``bazaar_saga_settled_total``.
    """
    order = _locked_order_or_none(order_id)
    if order is None:
        return "unknown_order"
    if step == contracts.ReserveStock.STEP and order.status == S.PENDING:
        order.rejection = {"reason": NO_ANSWER_FROM_CATALOG, "shortages": []}
        order_transition(
            order, to=S.REJECTED, actor="system:saga", reason="The catalog never answered.", extra_fields=("rejection",)
        )
        _release_stock(order, reason="Reservation never answered.")
        order_flag_for_support(order, reason="The catalog never answered the stock reservation.")
        return "rejected"
    if step == contracts.ReserveStock.STEP:
        return "already_answered"
    order_flag_for_support(order, reason=f"The catalog never acknowledged the {step} of this order.")
    return "flagged"


# --- Payment ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PaymentOutcome:
    order: Order
    attempt: PaymentAttempt

    @property
    def declined(self) -> bool:
        return self.attempt.status == PaymentStatus.DECLINED


class PaymentWindowClosed(Conflict):
    default_code = "payment_window_closed"


def _payment_attempt_open(*, order_id: Any, card_token: str) -> PaymentAttempt:
    """Lock the order, check it can be paid, and return the attempt to send to the provider.

    The attempt's key only changes after a definite decline, so a retry after a timeout asks the
    provider with the same key again and cannot charge twice.
    """
    with transaction.atomic():
        order = _locked_order(order_id)
        if order.status != S.RESERVED:
            raise IllegalTransition(f"An order that is {order.status} cannot be paid.")
        if order.payment_due_at is not None and order.payment_due_at <= timezone.now():
            raise PaymentWindowClosed("The time to pay this order is over; it is being cancelled.")
        attempt, created = PaymentAttempt.objects.get_or_create(
            idempotency_key=f"{order.id}:{order.declined_payments + 1}",
            defaults={
                "order": order,
                "provider": payment_provider().name,
                "card_token": card_token,
                "amount": order.total,
                "currency": order.currency,
            },
        )
        if not created and attempt.card_token != card_token:
            attempt.card_token = card_token
            attempt.save(update_fields=["card_token", "updated_at"])
        return attempt


def order_pay(*, order_id: Any, actor: str, card_token: str) -> PaymentOutcome:
    """Charge the order's total; on success it is paid and the catalog commits the stock.

    Declined: the order stays reserved (the customer may retry). No answer from the provider: 504,
    the order unchanged and the attempt left open for the retry.
    """
    try:
        attempt = _payment_attempt_open(order_id=order_id, card_token=card_token)
    except PaymentWindowClosed:
        order_expire(order_id=order_id)
        raise
    provider = payment_provider()
    try:
        result = provider.charge(
            idempotency_key=attempt.idempotency_key,
            amount=attempt.amount,
            currency=attempt.currency,
            card_token=card_token,
        )
    except PaymentTimeout as exc:
        logger.warning("payment provider timed out", extra={"order_id": str(order_id)})
        raise GatewayTimeout("The payment provider did not answer; nothing changed. Retry the payment.") from exc
    with transaction.atomic():
        order = _locked_order(order_id)
        attempt = PaymentAttempt.objects.select_for_update().get(pk=attempt.pk)
        if attempt.status != PaymentStatus.PENDING:
            return PaymentOutcome(order=order, attempt=attempt)  # a concurrent retry settled it
        if not result.succeeded:
            attempt.status = PaymentStatus.DECLINED
            attempt.failure_reason = result.decline_reason
            attempt.save(update_fields=["status", "failure_reason", "updated_at"])
            order.declined_payments += 1
            order.save(update_fields=["declined_payments", "updated_at"])
            order_record_event(order, kind="payment_declined", actor=actor, reason=result.decline_reason)
            return PaymentOutcome(order=order, attempt=attempt)
        attempt.status = PaymentStatus.SUCCEEDED
        attempt.provider_reference = result.reference
        if order.status != S.RESERVED:
            # Cancelled (or expired) while the provider was charging: give the money back.
            provider.refund(reference=result.reference, amount=attempt.amount)
            attempt.status = PaymentStatus.REFUNDED
            attempt.save(update_fields=["status", "provider_reference", "updated_at"])
            order_record_event(order, kind="refund", actor=actor, reason="Paid after cancellation.")
            raise_after = True
        else:
            attempt.save(update_fields=["status", "provider_reference", "updated_at"])
            order_transition(order, to=S.PAID, actor=actor, reason=f"Payment {result.reference}.")
            outbox_enqueue(contracts.CommitReservation(order_id=str(order.id)))
            raise_after = False
    if raise_after:
        raise IllegalTransition(f"The order was {order.status} meanwhile; the payment was refunded.")
    return PaymentOutcome(order=order, attempt=attempt)


# --- Cancellation, refunds, shipping, delivery -----------------------------------------------------


def _refund_payments(order: Order, *, actor: str, reason: str) -> Decimal:
    refunded = Decimal("0.00")
    provider = payment_provider()
    for attempt in order.payments.select_for_update().filter(status=PaymentStatus.SUCCEEDED):
        provider.refund(reference=attempt.provider_reference, amount=attempt.amount)
        attempt.status = PaymentStatus.REFUNDED
        attempt.save(update_fields=["status", "updated_at"])
        refunded += attempt.amount
    if refunded:
        order.refunded_amount += refunded
        order.save(update_fields=["refunded_amount", "updated_at"])
        order_record_event(order, kind="refund", actor=actor, reason=f"Refunded {refunded} {order.currency}. {reason}")
    return refunded


def order_cancel(*, order_id: Any, actor: str, reason: str) -> Order:
    """Cancel a pending, reserved or paid order: stock released, money refunded when paid."""
    with transaction.atomic():
        order = _locked_order(order_id)
        previous = order.status
        order_transition(order, to=S.CANCELLED, actor=actor, reason=reason or "Cancelled.")
        if previous == S.PAID:
            _refund_payments(order, actor=actor, reason=reason)
        # Also when still pending: the reservation may be in flight; the catalog's release is
        # idempotent, and a late "reserved" reply for a cancelled order releases again.
        _release_stock(order, reason=f"Order cancelled: {reason}" if reason else "Order cancelled.")
    return order


def order_refund(*, order_id: Any, actor: str, reason: str) -> Order:
    """Support's refund: a paid order is cancelled (stock back); a shipped one keeps its status."""
    with transaction.atomic():
        order = _locked_order(order_id)
        if order.status == S.PAID:
            return order_cancel(order_id=order_id, actor=actor, reason=reason)
        if order.status not in (S.SHIPPED, S.DELIVERED):
            raise IllegalTransition(f"An order that is {order.status} has no payment to refund.")
        if not _refund_payments(order, actor=actor, reason=reason):
            raise Conflict("This order's payment was already refunded.")
    return order


def order_ship_lines(*, order_id: Any, actor: str, merchant_ids: Iterable[int] | None) -> Order:
    """Mark the lines of ``merchant_ids`` (all lines when None) shipped; the order ships with its last."""
    with transaction.atomic():
        order = _locked_order(order_id)
        if order.status != S.PAID:
            raise IllegalTransition(f"Lines of an order that is {order.status} cannot be shipped.")
        lines = order.lines.filter(shipped_at__isnull=True)
        if merchant_ids is not None:
            lines = lines.filter(merchant_id__in=list(merchant_ids))
        if not lines.update(shipped_at=timezone.now(), shipped_by=actor):
            raise Conflict("There are no unshipped lines of yours in this order.")
        if not order.lines.filter(shipped_at__isnull=True).exists():
            order_transition(order, to=S.SHIPPED, actor=actor, reason="All lines shipped.")
        else:
            order_record_event(order, kind="lines_shipped", actor=actor, reason="Some lines shipped.")
    return order


def order_mark_delivered(*, order_id: Any, actor: str, reason: str = "") -> Order:
    with transaction.atomic():
        order = _locked_order(order_id)
        order_transition(order, to=S.DELIVERED, actor=actor, reason=reason or "Delivered.")
    return order


# --- Expiry ----------------------------------------------------------------------------------------


def order_expire(*, order_id: Any, now: datetime | None = None) -> bool:
    """Cancel an order whose time ran out (re-checked under the lock); True when it was."""
    now = now or timezone.now()
    with transaction.atomic():
        order = _locked_order_or_none(order_id)
        return order is not None and _expire_locked(order, now=now)


def _expire_locked(order: Order, *, now: datetime) -> bool:
    if not _is_overdue(order, now=now):
        return False
    order_transition(order, to=S.CANCELLED, actor=ACTOR_EXPIRY, reason="Not paid in time.")
    _release_stock(order, reason="Order expired.")
    return True


def _is_overdue(order: Order, *, now: datetime) -> bool:
    if order.status == S.RESERVED:
        return order.payment_due_at is not None and order.payment_due_at <= now
    if order.status == S.PENDING:
        return order.created_at <= now - timedelta(seconds=settings.ORDER_PENDING_TIMEOUT_SECONDS)
    return False


def orders_expire_overdue(*, now: datetime | None = None) -> int:
    """Cancel every reserved order past its payment time (and pending ones the catalog never
    answered); each in its own transaction so one bad order does not hold up the rest."""
    from order_service.orders.selectors import order_overdue_ids

    now = now or timezone.now()
    expired = 0
    for order_id in order_overdue_ids(now=now):
        try:
            expired += order_expire(order_id=order_id, now=now)
        except Exception:
            logger.exception("order expiry failed", extra={"order_id": str(order_id)})
    return expired


# --- Erasure ---------------------------------------------------------------------------------------


def orders_anonymise_customer(*, customer_id: str) -> int:
    """Erase the customer's personal data: orders keep money and items, lose email and addresses."""
    with transaction.atomic():
        updated = Order.objects.filter(customer_id=customer_id, customer_erased_at__isnull=True).update(
            customer_email="", shipping_address={}, customer_erased_at=timezone.now()
        )
        Cart.objects.filter(customer_id=customer_id).delete()
    return updated
