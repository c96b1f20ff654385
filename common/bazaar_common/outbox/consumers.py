"""``consumer``: declare an idempotent message handler as a named Celery task."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from celery import shared_task

from bazaar_common.outbox.services import message_consume_once


def consumer(name: str, **task_options: Any) -> Callable[[Callable[[dict[str, Any]], Any]], Any]:
    """Register ``handler(payload)`` as task ``name`` that runs at most once per message id.

    The handler runs inside the transaction that records the message as processed, so its database
    effect and the record commit together or not at all.
    """

    def decorate(handler: Callable[[dict[str, Any]], Any]) -> Any:
        @shared_task(name=name, acks_late=True, reject_on_worker_lost=True, **task_options)
        def task(*, message_id: str, payload: dict[str, Any]) -> bool:
            return message_consume_once(message_id=message_id, task_name=name, handler=lambda: handler(payload))

        task.handler = handler  # type: ignore[attr-defined]
        return task

    return decorate
