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

    class Meta:
        indexes = [
            models.Index(
                fields=["created_at"],
                name="outbox_unpublished_idx",
                condition=models.Q(published_at__isnull=True),
            )
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
