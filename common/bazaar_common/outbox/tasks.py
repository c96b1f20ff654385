"""The outbox's own tasks, in every service: acknowledgements of our messages arrive here."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from bazaar_common.contracts import MalformedMessage, MessageAck
from bazaar_common.outbox.consumers import retry_options
from bazaar_common.outbox.services import message_dead_letter, outbox_acknowledge_many


@shared_task(name=MessageAck.TASK, acks_late=True, reject_on_worker_lost=True, **retry_options())
def message_ack(
    *, message_id: str = "", payload: Any = None, batch: list[dict[str, Any]] | None = None, **_: Any
) -> int:
    """One acknowledgement (``message_id``, ``payload``), with more bound for this queue in
    ``batch`` (pairs of the same, see ``outbox_publish``); returns how many of our rows it settled.
    Idempotent by nature (marking a row acknowledged twice changes nothing)."""
    acks = []
    for item in [{"message_id": message_id, "payload": payload}, *(batch or [])]:
        one_id, one_payload = (
            (str(item.get("message_id", "")), item.get("payload")) if isinstance(item, dict) else ("", item)
        )
        try:
            acks.append(MessageAck.parse(one_payload))
        except MalformedMessage as exc:
            message_dead_letter(
                message_id=one_id or message_id, task_name=MessageAck.TASK, payload=one_payload, error=exc
            )
    return outbox_acknowledge_many(acks)
