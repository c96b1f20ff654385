"""Read-only views of the ledger and reservations; stock changes go through the product admin."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from catalog_service.inventory.models import Reservation, ReservationLine, StockMovement
from catalog_service.products import permissions
from catalog_service.products.admin import actor, sees_everything


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(StockMovement)
class StockMovementAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "product",
        "delta_on_hand",
        "delta_reserved",
        "on_hand_after",
        "reserved_after",
        "reason",
        "order_id",
        "actor",
        "note",
    )
    list_filter = ("reason",)
    search_fields = ("order_id", "product__sku", "product__name", "note")
    list_select_related = ("product",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[StockMovement]:
        queryset = super().get_queryset(request)
        if sees_everything(request):
            return queryset
        return queryset.filter(product__in=permissions.visible_products(actor(request)).values("pk"))


class ReservationLineInline(admin.TabularInline):
    model = ReservationLine
    extra = 0
    can_delete = False
    readonly_fields = ("product", "quantity")

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Reservation)
class ReservationAdmin(ReadOnlyAdmin):
    list_display = ("order_id", "status", "expires_at", "release_reason", "created_at", "updated_at")
    list_filter = ("status",)
    search_fields = ("order_id",)
    inlines = [ReservationLineInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Reservation]:
        queryset = super().get_queryset(request)
        return queryset if sees_everything(request) else queryset.none()
