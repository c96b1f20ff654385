from django.contrib import admin

from bazaar_common.outbox.models import DeadLetter, OutboxMessage


class _ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request):  # written by services only
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(OutboxMessage)
class OutboxMessageAdmin(_ReadOnly):
    list_display = ("id", "task_name", "queue", "created_at", "published_at", "attempts", "acked_at", "gave_up_at")
    list_filter = (
        "task_name",
        ("published_at", admin.EmptyFieldListFilter),
        ("acked_at", admin.EmptyFieldListFilter),
        ("gave_up_at", admin.EmptyFieldListFilter),
    )
    readonly_fields = [f.name for f in OutboxMessage._meta.fields]


@admin.register(DeadLetter)
class DeadLetterAdmin(_ReadOnly):
    """Messages that did not match their contract: support reads why, and fixes the sender."""

    list_display = ("received_at", "task_name", "message_id", "reason")
    list_filter = ("task_name",)
    search_fields = ("message_id", "reason")
    readonly_fields = [f.name for f in DeadLetter._meta.fields]
