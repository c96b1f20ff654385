"""The auth admin: support staff look accounts up; only admins change roles or deactivate.

Roles and deactivation go through the same services as the API, so the admin flags, the refresh
tokens and the role list stay consistent whichever door was used.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest

from auth_service.accounts import services
from auth_service.accounts.models import ROLE_CHOICES, User


class UserAdminForm(forms.ModelForm):
    role_set = forms.MultipleChoiceField(
        label="Roles", choices=ROLE_CHOICES, required=False, widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = User
        fields = ["role_set"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance and self.instance.pk:
            self.fields["role_set"].initial = self.instance.role_list


@admin.register(User)
class UserAdmin(admin.ModelAdmin):
    form = UserAdminForm
    list_display = ["email", "roles_display", "is_active", "date_joined", "last_login"]
    list_filter = ["is_active", "is_staff", "is_superuser"]
    search_fields = ["email", "id"]
    ordering = ["-date_joined"]
    readonly_fields = ["id", "email", "is_active", "deactivated_at", "date_joined", "last_login"]
    actions = ["deactivate_selected"]

    @admin.display(description="Roles")
    def roles_display(self, obj: User) -> str:
        return ", ".join(obj.role_list)

    def get_fields(self, request: HttpRequest, obj: User | None = None) -> tuple[str, ...]:
        fields = [str(name) for name in self.readonly_fields]
        if request.user.is_superuser:
            fields.append("role_set")
        return tuple(fields)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # accounts are created by sign-up (or seed_demo), never by hand

    def has_delete_permission(self, request: HttpRequest, obj: User | None = None) -> bool:
        return False  # deactivate or erase instead; ids are referenced by every other service

    def has_change_permission(self, request: HttpRequest, obj: User | None = None) -> bool:
        return request.user.is_superuser

    def save_model(self, request: HttpRequest, obj: User, form: Any, change: bool) -> None:
        roles = set(form.cleaned_data.get("role_set") or [])
        if str(obj.pk) == str(request.user.pk) and "admin" not in roles:
            self.message_user(request, "You cannot remove your own admin role.", messages.ERROR)
            roles.add("admin")
        services.user_roles_set(user=obj, roles=roles)

    @admin.action(description="Deactivate selected accounts (ends their sessions)")
    def deactivate_selected(self, request: HttpRequest, queryset: Any) -> None:
        if not request.user.is_superuser:
            self.message_user(request, "Only admins deactivate accounts.", messages.ERROR)
            return
        for user in queryset:
            services.user_deactivate(user=user)
        self.message_user(request, f"{queryset.count()} account(s) deactivated.")
