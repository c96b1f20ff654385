"""Role permissions. Views declare one explicitly; the default for a new view is authenticated."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission

from bazaar_common.auth.tokens import (
    ROLE_ADMIN,
    ROLE_CUSTOMER,
    ROLE_MERCHANT,
    ROLE_SERVICE,
    ROLE_SUPPORT,
    Principal,
)


def _principal(request: Any) -> Principal | None:
    user = getattr(request, "user", None)
    return user if isinstance(user, Principal) else None


class HasAnyRole(BasePermission):
    roles: frozenset[str] = frozenset()

    def has_permission(self, request: Any, view: Any) -> bool:
        principal = _principal(request)
        return principal is not None and principal.has_role(*self.roles)


def roles_required(*roles: str) -> type[HasAnyRole]:
    """A permission class that admits callers holding any of ``roles``."""
    return type(f"HasRole_{'_'.join(roles)}", (HasAnyRole,), {"roles": frozenset(roles)})


class IsCustomer(HasAnyRole):
    roles = frozenset({ROLE_CUSTOMER})


class IsMerchant(HasAnyRole):
    roles = frozenset({ROLE_MERCHANT})


class IsStaff(HasAnyRole):
    """Support staff and admins."""

    roles = frozenset({ROLE_SUPPORT, ROLE_ADMIN})


class IsAdmin(HasAnyRole):
    roles = frozenset({ROLE_ADMIN})


class IsService(HasAnyRole):
    """Other Bazaar services, authenticated with their own short-lived service tokens."""

    roles = frozenset({ROLE_SERVICE})
