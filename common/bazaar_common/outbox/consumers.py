"""``consumer``: declare an idempotent, typed message handler as a named Celery task."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from celery import shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError
from kombu.exceptions import OperationalError as BrokerOperationalError

from bazaar_common.contracts import MalformedMessage, Message
from bazaar_common.outbox import metrics
from bazaar_common.outbox.services import message_consume_once, message_dead_letter

logger = logging.getLogger(__name__)
M = TypeVar("M", bound=Message)

# Failures that pass by themselves: the database refusing or dropping connections, a deadlock or
# serialization failure (psycopg2 raises both as OperationalError subclasses), a broker hiccup.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (OperationalError, InterfaceError, BrokerOperationalError)
# Retried with exponential back-off and jitter; after the last retry the sender's re-drive (no
# acknowledgement came) sends the message again, so even a long outage loses nothing.
_RETRY_OPTIONS: dict[str, Any] = {
    "autoretry_for": TRANSIENT_ERRORS,
    "retry_backoff": 1,
    "retry_jitter": True,
    "max_retries": 10,
}


def retry_options() -> dict[str, Any]:
    """Celery's auto-retry options of every consumer, with the back-off cap of the settings.

    A retry is a new message with a countdown, held unacknowledged by a worker until it is due: on
    Redis the countdown plus the task itself must stay under the visibility timeout, or Redis hands
    it to a second worker meanwhile (``CELERY_RETRY_BACKOFF_MAX_SECONDS``, 30 s by default; the
    Celery app refuses a timeout that does not cover it: ``bazaar_common.celery``).
    """
    return {**_RETRY_OPTIONS, "retry_backoff_max": settings.CELERY_RETRY_BACKOFF_MAX_SECONDS}


def consumer(
    message_cls: type[M], *, queue: str | None = None, **task_options: Any
) -> Callable[[Callable[[M], Any]], Any]:
    """Register ``handler(message)`` as the task of ``message_cls`` (its route to ``queue`` when
    it fans out), run at most once per message id.

    The payload is parsed into ``message_cls`` first; one that does not parse is dead-lettered
    (recorded, counted, logged, acknowledged) and the handler never sees it. The handler runs
    inside the transaction that records the message as processed and writes its acknowledgement,
    so its database effect, the record and the acknowledgement commit together or not at all.
    Transient failures are retried with back-off (see :func:`retry_options`).
    """
    route = message_cls.route_for(queue) if queue else message_cls.ROUTES[0]
    name = route.task

    def decorate(handler: Callable[[M], Any]) -> Any:
        options = {**retry_options(), **task_options}

        @shared_task(name=name, bind=True, acks_late=True, reject_on_worker_lost=True, **options)
        def task(self: Any, *, message_id: str, payload: Any, reply_queue: str = "") -> bool:
            if self.request.retries:
                metrics.CONSUMER_RETRIES.labels(task=name).inc()
            try:
                message = message_cls.parse(payload)
            except MalformedMessage as exc:
                message_dead_letter(
                    message_id=message_id, task_name=name, payload=payload, error=exc, reply_queue=reply_queue
                )
                return False
            return message_consume_once(
                message_id=message_id, task_name=name, handler=lambda: handler(message), reply_queue=reply_queue
            )

        task.handler = handler
        task.message_class = message_cls
        return task

    return decorate
