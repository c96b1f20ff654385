from django.contrib import admin

from bazaar_common.outbox.models import OutboxMessage


@admin.register(OutboxMessage)
class OutboxMessageAdmin(admin.ModelAdmin):
    list_display = ("id", "task_name", "queue", "created_at", "published_at", "attempts")
    list_filter = ("task_name", ("published_at", admin.EmptyFieldListFilter))
    readonly_fields = [f.name for f in OutboxMessage._meta.fields]

    def has_add_permission(self, request):  # messages are written by services only
        return False

    def has_change_permission(self, request, obj=None):
        return False
