"""The support workplace: find orders, read their timeline, cancel or refund with a reason.

Staff sign in with their Bazaar account (the shadow user's username is their Bazaar user id, which
is what the timeline records as the actor). Orders are read-only here: every change goes through
the same services as the API, so the state machine, the outbox and refunds apply alike.
"""

from __future__ import annotations

import uuid
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from rest_framework.exceptions import APIException

from bazaar_common.domain import DomainError
from order_service.orders import services
from order_service.orders.models import Order, OrderEvent, OrderLine, PaymentAttempt, ReconciliationRepair


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class OrderLineInline(ReadOnlyInline):
    model = OrderLine
    fields = ("product_id", "merchant_id", "sku", "name", "unit_price", "quantity", "currency", "shipped_at")
    readonly_fields = fields


class OrderEventInline(ReadOnlyInline):
    model = OrderEvent
    verbose_name = "timeline entry"
    verbose_name_plural = "timeline"
    fields = ("created_at", "kind", "from_status", "to_status", "actor", "reason")
    readonly_fields = fields
    ordering = ("created_at", "id")


class PaymentAttemptInline(ReadOnlyInline):
    model = PaymentAttempt
    fields = (
        "created_at",
        "status",
        "amount",
        "currency",
        "provider",
        "provider_reference",
        "failure_reason",
    )
    readonly_fields = fields


class ReasonForm(forms.Form):
    reason = forms.CharField(
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Recorded in each order's timeline.",
    )


def _apply_with_reason(
    modeladmin: OrderAdmin,
    request: HttpRequest,
    queryset: QuerySet[Order],
    *,
    action: str,
    verb: str,
    operation: Any,
) -> HttpResponse | None:
    """Ask for a reason on an intermediate page, then apply ``operation`` to each order."""
    form = ReasonForm(request.POST if "apply" in request.POST else None)
    if not form.is_valid():
        return TemplateResponse(
            request,
            "admin/orders/order/reason_action.html",
            {
                **modeladmin.admin_site.each_context(request),
                "title": f"{verb.capitalize()} orders",
                "verb": verb,
                "action": action,
                "orders": queryset,
                "form": form,
                "opts": modeladmin.model._meta,
                "action_checkbox_name": ACTION_CHECKBOX_NAME,
            },
        )
    done, refused = 0, []
    for order in queryset:
        try:
            operation(order_id=order.pk, actor=request.user.get_username(), reason=form.cleaned_data["reason"])
            done += 1
        except (APIException, DomainError) as exc:  # an illegal transition: report it, go on with the others
            refused.append(f"{order.pk}: {exc.detail}")
    if done:
        modeladmin.message_user(request, f"{done} order(s): {verb} done.", messages.SUCCESS)
    for line in refused:
        modeladmin.message_user(request, f"Not done for {line}", messages.ERROR)
    return None


class NeedsSupportFilter(admin.SimpleListFilter):
    """Orders the saga could not settle by itself (see ``Order.support_flag``)."""

    title = "needs support"
    parameter_name = "needs_support"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Needs support"), ("no", "No")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Order]) -> QuerySet[Order]:
        if self.value() == "yes":
            return queryset.exclude(support_flag="")
        if self.value() == "no":
            return queryset.filter(support_flag="")
        return queryset


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ("id", "customer_email", "status", "total", "currency", "created_at", "support_flag")
    list_filter = (NeedsSupportFilter, "status", "created_at", "paid_at")
    date_hierarchy = "created_at"
    search_fields = ("customer_email",)
    search_help_text = "An order id (exact) or a customer email (or part of one)."
    ordering = ("-created_at",)
    inlines = (OrderLineInline, PaymentAttemptInline, OrderEventInline)
    actions = ("cancel_orders", "refund_orders")
    readonly_fields = (
        "id",
        "customer_id",
        "customer_email",
        "status",
        "currency",
        "subtotal",
        "total",
        "refunded_amount",
        "shipping_address",
        "rejection",
        "created_at",
        "reserved_at",
        "payment_due_at",
        "paid_at",
        "shipped_at",
        "delivered_at",
        "cancelled_at",
        "customer_erased_at",
        "stock_committed_at",
        "stock_released_at",
        "support_flag",
    )
    fields = readonly_fields

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Order], search_term: str
    ) -> tuple[QuerySet[Order], bool]:
        term = search_term.strip()
        try:
            return queryset.filter(pk=uuid.UUID(term)), False
        except ValueError:
            return super().get_search_results(request, queryset, term)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # orders come from checkout only

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # orders are records for the accounts; they are cancelled, never deleted

    @admin.action(description="Cancel selected orders (stock released, refund when paid)", permissions=["change"])
    def cancel_orders(self, request: HttpRequest, queryset: QuerySet[Order]) -> HttpResponse | None:
        return _apply_with_reason(
            self, request, queryset, action="cancel_orders", verb="cancel", operation=services.order_cancel
        )

    @admin.action(description="Refund selected orders", permissions=["change"])
    def refund_orders(self, request: HttpRequest, queryset: QuerySet[Order]) -> HttpResponse | None:
        return _apply_with_reason(
            self, request, queryset, action="refund_orders", verb="refund", operation=services.order_refund
        )


@admin.register(ReconciliationRepair)
class ReconciliationRepairAdmin(admin.ModelAdmin):
    """What the periodic reconciliation repaired: support sees each disagreement and its fix."""

    list_display = ("created_at", "kind", "order_id", "order_status", "reservation_status", "detail")
    list_filter = ("kind", "created_at")
    search_fields = ("order_id",)
    readonly_fields = ("created_at", "kind", "order_id", "order_status", "reservation_status", "detail")
    fields = readonly_fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
