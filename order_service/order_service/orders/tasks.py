"""Celery tasks: the saga's replies and erasure (idempotent consumers), and the expiry beat task.

Thin on purpose: each takes plain data and calls one service.
"""

from __future__ import annotations

from typing import Any

from celery import shared_task

from bazaar_common import contracts
from bazaar_common.outbox.consumers import consumer
from bazaar_common.outbox.services import on_undelivered
from order_service.orders import services

EXPIRE_UNPAID_TASK = "orders.expire_unpaid"


@consumer(contracts.StockReserved)
def stock_reserved(message: contracts.StockReserved) -> None:
    services.order_apply_stock_reserved(order_id=message.order_id)


@consumer(contracts.StockRejected)
def stock_rejected(message: contracts.StockRejected) -> None:
    services.order_apply_stock_rejected(
        order_id=message.order_id,
        reason=message.reason.value,
        shortages=message.to_payload()["shortages"],
    )


@consumer(contracts.StockCommitted)
def stock_committed(message: contracts.StockCommitted) -> None:
    services.order_apply_stock_committed(order_id=message.order_id, outcome=message.outcome)


@consumer(contracts.StockReleased)
def stock_released(message: contracts.StockReleased) -> None:
    services.order_apply_stock_released(order_id=message.order_id, outcome=message.outcome)


@consumer(contracts.HoldExpiring)
def hold_expiring(message: contracts.HoldExpiring) -> None:
    services.order_apply_hold_expiring(order_id=message.order_id)


@consumer(contracts.UserErased, queue=contracts.QUEUE_ORDERS)
def user_erased(message: contracts.UserErased) -> None:
    services.orders_anonymise_customer(customer_id=message.user_id)


@on_undelivered(
    *(cls.ROUTES[0].task for cls in (contracts.ReserveStock, contracts.CommitReservation, contracts.ReleaseReservation))
)
def saga_step_unanswered(message: contracts.Message, row: Any) -> str:
    """Runs in the transaction that gives the message up (see ``outbox_redrive``)."""
    return services.order_settle_unanswered(order_id=message.order_id, step=message.STEP)  # type: ignore[attr-defined]


@shared_task(name=EXPIRE_UNPAID_TASK, acks_late=True, ignore_result=True)
def expire_unpaid() -> int:
    """Cancel orders not paid in time (and release their stock); safe to run concurrently."""
    return services.orders_expire_overdue()


@shared_task(name="orders.reconcile_reservations", acks_late=True, ignore_result=True)
def reconcile_reservations() -> int:
    """Periodic (beat): compare orders with the catalog's reservations and repair; see
    :mod:`order_service.orders.reconciliation`. A catalog that is down skips the round."""
    from bazaar_common.errors import GatewayTimeout, ServiceUnavailable
    from order_service.orders.reconciliation import orders_reconcile

    try:
        return len(orders_reconcile())
    except (ServiceUnavailable, GatewayTimeout):
        return 0
