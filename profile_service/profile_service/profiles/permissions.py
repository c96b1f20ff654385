"""Who may touch which profile, in one place."""

from __future__ import annotations

import uuid
from typing import Any

from rest_framework.permissions import BasePermission

from bazaar_common.auth.tokens import Principal


class IsUser(BasePermission):
    """A signed-in person (any role); service tokens are for the internal API only."""

    def has_permission(self, request: Any, view: Any) -> bool:
        user = getattr(request, "user", None)
        return isinstance(user, Principal) and not user.is_service and _is_uuid(user.id)


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def can_read_profile(principal: Principal, user_id: uuid.UUID) -> bool:
    """Support and admins read any profile; everyone else only their own.

    Callers answer 404 (not 403) when this is False, so a customer cannot even learn whether
    another user has a profile.
    """
    return principal.is_staff_member or principal.id == str(user_id)
