"""Celery tasks: the saga's replies and erasure (idempotent consumers), and the expiry beat task.

Thin on purpose: each takes plain data and calls one service.
"""

from __future__ import annotations

from typing import Any

from celery import shared_task

from bazaar_common import contracts
from bazaar_common.outbox.consumers import consumer
from order_service.orders import services

EXPIRE_UNPAID_TASK = "orders.expire_unpaid"


@consumer(contracts.STOCK_RESERVED.task)
def stock_reserved(payload: dict[str, Any]) -> None:
    services.order_apply_stock_reserved(order_id=payload["order_id"])


@consumer(contracts.STOCK_REJECTED.task)
def stock_rejected(payload: dict[str, Any]) -> None:
    services.order_apply_stock_rejected(
        order_id=payload["order_id"], reason=payload.get("reason", ""), shortages=payload.get("shortages", [])
    )


@consumer(next(route.task for route in contracts.USER_ERASED if route.queue == contracts.QUEUE_ORDERS))
def user_erased(payload: dict[str, Any]) -> None:
    services.orders_anonymise_customer(customer_id=payload["user_id"])


@shared_task(name=EXPIRE_UNPAID_TASK, acks_late=True, ignore_result=True)
def expire_unpaid() -> int:
    """Cancel orders not paid in time (and release their stock); safe to run concurrently."""
    return services.orders_expire_overdue()
