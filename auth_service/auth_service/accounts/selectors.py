"""Reads of the auth service."""

from __future__ import annotations

import uuid
from typing import Any

from auth_service.accounts.models import User
from bazaar_common.auth.tokens import Principal
from bazaar_common.contracts import http as internal
from bazaar_common.domain import CredentialsRefused


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
        raise CredentialsRefused("This account is not active.")
    return user


def user_account(user: User) -> internal.Account:
    """The plain data other services and clients get about a user."""
    return internal.Account(
        id=user.pk,
        email=user.email,
        roles=user.role_list,
        is_active=user.is_active,
        date_joined=user.date_joined,
        last_login=user.last_login,
    )


def user_document(user: User) -> dict[str, Any]:
    """:func:`user_account` as JSON (what the public user endpoints answer, too)."""
    return user_account(user).to_json()
