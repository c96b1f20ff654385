"""The profile service's Django admin: support reads (view permissions only), admins do everything.

Support's rights come from the "support" group's permissions (granted in a data migration); the
shadow users the Bazaar admin backend creates are put in that group at sign-in.
"""

from __future__ import annotations

from django.contrib import admin

from profile_service.profiles.models import Address, ErasedUser, Profile


class AddressInline(admin.StackedInline):
    model = Address
    extra = 0
    fields = (
        ("label", "is_default_shipping", "is_default_billing"),
        "full_name",
        "line1",
        "line2",
        ("postal_code", "city"),
        ("region", "country"),
        "phone",
    )


@admin.register(Profile)
class ProfileAdmin(admin.ModelAdmin):
    list_display = (
        "user_id",
        "display_name",
        "phone",
        "language",
        "currency",
        "marketing_consent",
        "created_at",
    )
    list_filter = ("language", "currency", "marketing_consent")
    search_fields = ("=user_id", "display_name", "phone")
    readonly_fields = ("user_id", "marketing_consent_changed_at", "created_at", "updated_at")
    inlines = [AddressInline]
    ordering = ("-created_at",)

    def has_add_permission(self, request):  # profiles come from registrations, not by hand
        return False


@admin.register(Address)
class AddressAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "profile",
        "full_name",
        "city",
        "country",
        "is_default_shipping",
        "is_default_billing",
    )
    list_filter = ("country", "is_default_shipping", "is_default_billing")
    search_fields = ("=profile__user_id", "full_name", "postal_code", "city")
    list_select_related = ("profile",)
    raw_id_fields = ("profile",)


@admin.register(ErasedUser)
class ErasedUserAdmin(admin.ModelAdmin):
    list_display = ("user_id", "erased_at")
    search_fields = ("=user_id",)
    readonly_fields = ("user_id", "erased_at")

    # The erasure record is evidence that a request was honoured: nobody edits it by hand.
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
