"""Celery entry points of the inventory: the order saga's commands and the sweep of overdue holds.

Thin on purpose: parse the contract payload, call a service. The ``consumer`` decorator makes each
handler idempotent by message id (and the services are idempotent by order id on top of that).
"""

from __future__ import annotations

import logging

from celery import shared_task

from bazaar_common import contracts
from bazaar_common.outbox.consumers import consumer
from catalog_service.inventory import services
from catalog_service.inventory.metrics import count_reservation

logger = logging.getLogger(__name__)


@consumer(contracts.ReserveStock)
def reserve_stock(message: contracts.ReserveStock) -> None:
    outcome = services.reservation_reserve(
        order_id=message.order_id,
        lines=[line.model_dump() for line in message.lines],
        expires_in_seconds=message.expires_in_seconds,
    )
    count_reservation(outcome.result, outcome.reason)


@consumer(contracts.CommitReservation)
def commit_reservation(message: contracts.CommitReservation) -> None:
    services.reservation_commit(order_id=message.order_id)


@consumer(contracts.ReleaseReservation)
def release_reservation(message: contracts.ReleaseReservation) -> None:
    services.reservation_release(order_id=message.order_id, reason=message.reason or "released")


@shared_task(name="catalog.expire_reservations", acks_late=True)
def expire_reservations() -> int:
    """Periodic (CELERY_BEAT_SCHEDULE): ask the order service about held reservations past their
    time limit (HoldExpiring); it answers with a commit or a release."""
    asked = services.reservations_expire_overdue()
    if asked:
        logger.info("overdue holds: asked the order service", extra={"count": asked})
    return asked
