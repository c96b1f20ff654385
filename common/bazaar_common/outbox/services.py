"""Writing to the outbox, publishing it, and consuming messages exactly once in effect."""

from __future__ import annotations

import logging
import queue
import threading
import time
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
    # Published right after commit by this process's publisher thread, so the request never
    # waits for the broker (a broker outage used to hold every checkout ~6 s); the relay catches
    # whatever that misses.
    transaction.on_commit(lambda: publisher.submit(ids))
    return messages


class BackgroundPublisher:
    """A daemon thread that publishes the messages of committed transactions soon after commit.

    After a failed publish it stops trying for ``pause_seconds`` and leaves the backlog to the
    relay, so an outage costs one connect timeout, not one per message.
    """

    def __init__(self, pause_seconds: float = 5.0) -> None:
        self.pause_seconds = pause_seconds
        self._queue: queue.SimpleQueue[tuple[Any, list[Any]]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._idle = threading.Event()
        self._idle.set()
        self._paused_until = 0.0

    def submit(self, ids: list[Any]) -> None:
        from celery import current_app

        self._idle.clear()
        # With the Celery app current where the transaction committed (a thread has its own).
        self._queue.put((current_app._get_current_object(), ids))
        if self._thread is None or not self._thread.is_alive():
            with self._lock:
                if self._thread is None or not self._thread.is_alive():
                    self._thread = threading.Thread(target=self._run, name="outbox-publisher", daemon=True)
                    self._thread.start()

    def resume(self) -> None:
        self._paused_until = 0.0

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until everything submitted was tried (tests, and a clean shutdown)."""
        return self._idle.wait(timeout)

    def _run(self) -> None:
        from django.db import close_old_connections

        while True:
            app, ids = self._queue.get()
            try:
                app.set_current()
                if time.monotonic() >= self._paused_until:
                    close_old_connections()
                    if outbox_publish(ids=ids) < len(ids) and _unpublished_count(ids):
                        self._paused_until = time.monotonic() + self.pause_seconds
            except Exception as exc:  # never let the thread die; the relay has the backlog
                logger.warning("outbox publisher round failed", extra={"error": str(exc)})
            finally:
                if self._queue.empty():
                    # Nothing waiting: give the connection back (a test database, a pooler).
                    connection.close()
                    self._idle.set()


def _unpublished_count(ids: list[Any]) -> int:
    return OutboxMessage.objects.filter(id__in=ids, published_at__isnull=True).count()


publisher = BackgroundPublisher()


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
    if published:
        publisher.resume()  # the broker answers again
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
