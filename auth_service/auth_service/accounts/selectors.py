"""Reads of the auth service."""

from __future__ import annotations

import uuid
from typing import Any

from rest_framework import exceptions, serializers

from auth_service.accounts.models import User
from bazaar_common.auth.tokens import Principal


def user_get(*, user_id: Any) -> User | None:
    """The user with this id, active or not; ``None`` for an unknown or malformed id."""
    try:
        pk = uuid.UUID(str(user_id))
    except ValueError:
        return None
    return User.objects.filter(pk=pk).first()


def user_for_principal(*, principal: Principal) -> User:
    """The account behind a user's access token; a deactivated account is refused here at once."""
    user = None if principal.is_service else user_get(user_id=principal.id)
    if user is None or not user.is_active:
        raise exceptions.AuthenticationFailed("This account is not active.")
    return user


def _timestamp(moment: Any) -> str:
    """The same rendering DRF gives datetimes elsewhere on the platform (UTC, ``Z``)."""
    return serializers.DateTimeField().to_representation(moment)


def user_document(user: User) -> dict[str, Any]:
    """The plain data other services and clients get about a user."""
    return {
        "id": str(user.pk),
        "email": user.email,
        "roles": user.role_list,
        "is_active": user.is_active,
        "date_joined": _timestamp(user.date_joined),
        "last_login": _timestamp(user.last_login) if user.last_login else None,
    }
