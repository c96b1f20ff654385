"""The outbox's own tasks, in every service: acknowledgements of our messages arrive here."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from bazaar_common.contracts import MalformedMessage, MessageAck
from bazaar_common.outbox.consumers import RETRY_OPTIONS
from bazaar_common.outbox.services import message_dead_letter, outbox_acknowledge


@shared_task(name=MessageAck.TASK, acks_late=True, reject_on_worker_lost=True, **RETRY_OPTIONS)
def message_ack(*, message_id: str, payload: Any, **_: Any) -> bool:
    """Idempotent by nature (marking a row acknowledged twice changes nothing)."""
    try:
        ack = MessageAck.parse(payload)
    except MalformedMessage as exc:
        message_dead_letter(message_id=message_id, task_name=MessageAck.TASK, payload=payload, error=exc)
        return False
    return outbox_acknowledge(ack)
