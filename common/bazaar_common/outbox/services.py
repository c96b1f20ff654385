"""Writing to the outbox, publishing it, and consuming messages exactly once in effect."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import asdict, is_dataclass
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from bazaar_common.contracts import Route
from bazaar_common.outbox.models import OutboxMessage, ProcessedMessage
from bazaar_common.request_id import current_request_id

logger = logging.getLogger(__name__)


def outbox_enqueue(*, routes: Route | Iterable[Route], payload: Any) -> list[OutboxMessage]:
    """Write one message per route in the caller's transaction; publish it once that commits.

    Call it inside the ``transaction.atomic`` block that makes the change the message announces:
    if that transaction rolls back, no message exists and nothing is sent.
    """
    route_list = [routes] if isinstance(routes, Route) else list(routes)
    body = asdict(payload) if is_dataclass(payload) else dict(payload)
    headers = {"request_id": current_request_id.get()}
    messages = [
        OutboxMessage.objects.create(task_name=route.task, queue=route.queue, payload=body, headers=headers)
        for route in route_list
    ]
    ids = [message.id for message in messages]
    # Publishing right after commit keeps latency low; the relay catches whatever this misses.
    transaction.on_commit(lambda: outbox_publish(ids=ids))
    return messages


def _send(message: OutboxMessage) -> None:
    from celery import current_app

    current_app.send_task(
        message.task_name,
        kwargs={"message_id": str(message.id), "payload": message.payload},
        queue=message.queue,
        task_id=str(message.id),
        headers={"request_id": message.headers.get("request_id")},
    )


def _publish_locked(queryset: Any) -> int:
    published = 0
    for message in queryset:
        try:
            _send(message)
        except Exception as exc:  # broker down: keep it for the relay's next round
            message.attempts += 1
            message.last_error = f"{exc.__class__.__name__}: {exc}"[:500]
            message.save(update_fields=["attempts", "last_error"])
            logger.warning("outbox publish failed", extra={"message_id": str(message.id), "error": str(exc)})
            break  # keep the order: later messages wait for this one
        message.published_at = timezone.now()
        message.attempts += 1
        message.save(update_fields=["published_at", "attempts"])
        published += 1
    return published


def _unpublished(ids: list[Any] | None, limit: int) -> Any:
    queryset = OutboxMessage.objects.filter(published_at__isnull=True).order_by("created_at", "id")
    if ids is not None:
        queryset = queryset.filter(id__in=ids)
    if connection.vendor == "postgresql":
        # Several relays (one per worker) never publish the same row concurrently.
        queryset = queryset.select_for_update(skip_locked=True)
    return queryset[:limit]


def outbox_publish(*, ids: list[Any] | None = None, limit: int = 100) -> int:
    """Publish unpublished messages (``ids`` only, or the oldest ``limit``); return how many."""
    try:
        with transaction.atomic():
            return _publish_locked(list(_unpublished(ids, limit)))
    except Exception as exc:  # the database itself is away: the relay will try again
        logger.warning("outbox relay round failed", extra={"error": str(exc)})
        return 0


def message_consume_once(*, message_id: str, task_name: str, handler: Callable[[], Any]) -> bool:
    """Run ``handler`` unless ``message_id`` was handled before; both in one transaction.

    Returns False for a redelivery. Two concurrent deliveries of one message: the second waits on
    the first's row and then finds it, so the handler's effect happens once.
    """
    try:
        with transaction.atomic():
            ProcessedMessage.objects.create(message_id=message_id, task_name=task_name)
            handler()
    except IntegrityError:
        if ProcessedMessage.objects.filter(message_id=message_id).exists():
            logger.info("duplicate message ignored", extra={"message_id": message_id, "task": task_name})
            return False
        raise
    return True
