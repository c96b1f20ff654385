from __future__ import annotations

import uuid

from django.db import models


class OutboxMessage(models.Model):
    """A message written in the same transaction as the change it announces.

    The relay publishes it to the broker afterwards; a broker outage delays it, never loses it.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    task_name = models.CharField(max_length=128)
    queue = models.CharField(max_length=64)
    payload = models.JSONField()
    headers = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    published_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")
    # Delivery to the consumer, not only to the broker: the consumer acknowledges the message id;
    # until then the relay re-sends it whenever ``ack_due_at`` passes (with back-off), and after
    # the last attempt hands it to the flow's give-up handler (``gave_up_at``). Null ``ack_due_at``:
    # nothing awaited (acknowledged, given up, an acknowledgement itself, or not yet published).
    ack_due_at = models.DateTimeField(null=True, blank=True)
    acked_at = models.DateTimeField(null=True, blank=True)
    ack_outcome = models.CharField(max_length=16, blank=True, default="", db_default="")
    gave_up_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["created_at"],
                name="outbox_unpublished_idx",
                condition=models.Q(published_at__isnull=True),
            ),
            models.Index(
                fields=["ack_due_at"],
                name="outbox_awaiting_ack_idx",
                condition=models.Q(ack_due_at__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.task_name} {self.id}"


class ProcessedMessage(models.Model):
    """A message this service has handled; its id makes a redelivery a no-op."""

    message_id = models.CharField(max_length=64, primary_key=True)
    task_name = models.CharField(max_length=128)
    processed_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.task_name} {self.message_id}"


class DeadLetter(models.Model):
    """A message this service received but could not take: a payload that is not its contract.

    Never retried automatically (the same bytes would fail the same way); support reads the
    reason, fixes the sender, and can re-send the payload by hand.
    """

    message_id = models.CharField(max_length=64, db_index=True)
    task_name = models.CharField(max_length=128, db_index=True)
    payload = models.JSONField(null=True)
    reason = models.TextField()
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-received_at", "-id"]

    def __str__(self) -> str:
        return f"dead letter {self.task_name} {self.message_id}"
