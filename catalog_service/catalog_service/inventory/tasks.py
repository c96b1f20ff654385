"""Celery entry points of the inventory: the order saga's commands and the expiry sweep.

Thin on purpose: parse the contract payload, call a service. The ``consumer`` decorator makes each
handler idempotent by message id (and the services are idempotent by order id on top of that).
"""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task

from bazaar_common import contracts
from bazaar_common.outbox.consumers import consumer
from catalog_service.inventory import services

logger = logging.getLogger(__name__)


def _order_id(payload: dict[str, Any]) -> str | None:
    order_id = payload.get("order_id")
    if not isinstance(order_id, str) or not order_id or len(order_id) > 64:
        logger.error("saga message without a usable order_id", extra={"payload": payload})
        return None
    return order_id


@consumer(contracts.RESERVE_STOCK.task)
def reserve_stock(payload: dict[str, Any]) -> None:
    order_id = _order_id(payload)
    if order_id is None:
        return
    services.reservation_reserve(
        order_id=order_id,
        lines=payload.get("lines"),
        expires_in_seconds=payload.get("expires_in_seconds", 900),
    )


@consumer(contracts.COMMIT_RESERVATION.task)
def commit_reservation(payload: dict[str, Any]) -> None:
    order_id = _order_id(payload)
    if order_id is not None:
        services.reservation_commit(order_id=order_id)


@consumer(contracts.RELEASE_RESERVATION.task)
def release_reservation(payload: dict[str, Any]) -> None:
    order_id = _order_id(payload)
    if order_id is not None:
        services.reservation_release(order_id=order_id, reason=str(payload.get("reason") or "released"))


@shared_task(name="catalog.expire_reservations", acks_late=True)
def expire_reservations() -> int:
    """Periodic (CELERY_BEAT_SCHEDULE): release held reservations past their time limit."""
    released = services.reservations_expire_overdue()
    if released:
        logger.info("expired reservations released", extra={"count": released})
    return released
