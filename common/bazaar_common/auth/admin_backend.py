"""Staff sign in to every service's Django admin with their one Bazaar account.

The admin login form posts ``username`` (we accept the email there) and ``password``. The backend
asks the auth service to check them (``POST /internal/v1/auth/admin-login``; inside the auth service
itself the check runs in-process through the ``BAZAAR_ADMIN_CREDENTIALS_CHECK`` setting) and then
brings the local user in line with the roles auth reports:

* ``username`` = the Bazaar user id (UUID), ``email`` copied;
* ``is_staff`` for merchant, support and admin; ``is_superuser`` only for admin;
* the local Groups named after the staff roles (``merchant``, ``support``, ``admin``) are granted or
  taken away; groups with other names are left alone. Each service gives those groups the model
  permissions they need in a data migration of its own.

A customer-only account is refused, and a user whose staff role was removed is demoted at their
next sign-in attempt. Passwords never live in a service's database: shadow users have an unusable
password, so no other backend can sign them in.
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils.module_loading import import_string

from bazaar_common.auth.client_address import client_address
from bazaar_common.auth.tokens import ROLE_ADMIN, STAFF_ROLES
from bazaar_common.contracts import http as internal

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StaffIdentity:
    """Who auth says the credentials belong to."""

    user_id: str
    email: str
    roles: frozenset[str]

    @property
    def is_staff(self) -> bool:
        return bool(self.roles & STAFF_ROLES)

    @property
    def is_superuser(self) -> bool:
        return ROLE_ADMIN in self.roles


def _ip_or_none(address: str) -> str | None:
    """An address that is no IP (``unknown`` behind a misconfigured proxy) is left to auth to see."""
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return None


def check_credentials_remotely(*, email: str, password: str, client_ip: str) -> StaffIdentity | None:
    """Ask the auth service; ``None`` for wrong credentials, throttling or auth being away."""
    from bazaar_common.errors import ServiceUnavailable
    from bazaar_common.http import service_client

    login = internal.ADMIN_LOGIN
    try:
        request = internal.AdminLoginRequest.parse(
            {"email": email, "password": password, "client_ip": _ip_or_none(client_ip)}
        )
    except internal.MalformedBody:
        return None  # empty or oversized credentials are nobody's: not worth asking auth
    try:
        response = service_client().request(login.service, login.method, login.path, json=request.to_json())
        if response.status != 200:
            if response.status == 429:
                logger.warning("admin sign-in throttled by auth", extra={"client_ip": client_ip})
            return None
        answer = response.parse(internal.StaffIdentityAnswer, service=login.service)
    except ServiceUnavailable as exc:
        logger.warning("admin sign-in: auth service unavailable", extra={"error": str(exc)})
        return None
    return StaffIdentity(user_id=str(answer.user_id), email=answer.email, roles=frozenset(answer.roles))


def _check_credentials(*, email: str, password: str, client_ip: str) -> StaffIdentity | None:
    local_check = getattr(settings, "BAZAAR_ADMIN_CREDENTIALS_CHECK", None)
    if local_check:
        return import_string(local_check)(email=email, password=password, client_ip=client_ip)
    return check_credentials_remotely(email=email, password=password, client_ip=client_ip)


def _uses_shadow_users(user_model: Any) -> bool:
    """Services keep Django's username-based user; the auth service's user *is* the account."""
    return user_model.USERNAME_FIELD == "username"


def _sync_role_groups(user: Any, roles: frozenset[str]) -> None:
    wanted = roles & STAFF_ROLES
    current = set(user.groups.filter(name__in=STAFF_ROLES).values_list("name", flat=True))
    for name in sorted(wanted - current):
        group, _ = Group.objects.get_or_create(name=name)
        user.groups.add(group)
    stale = current - wanted
    if stale:
        user.groups.remove(*Group.objects.filter(name__in=stale))


def shadow_user_sync(identity: StaffIdentity) -> Any | None:
    """Create or update the local user for ``identity``; ``None`` when it may not enter the admin."""
    # Any: the services' user model (shadow users by username) or the auth service's own one.
    user_model: Any = get_user_model()
    with transaction.atomic():
        if _uses_shadow_users(user_model):
            user, _ = user_model.objects.select_for_update().get_or_create(
                username=identity.user_id,
                # Stored at creation: the session hash is derived from it, so it must not change
                # between this sign-in and the next request.
                defaults={"email": identity.email, "password": make_password(None)},
            )
        else:
            user = user_model.objects.select_for_update().filter(pk=identity.user_id).first()
            if user is None:
                return None
        was_staff = user.is_staff
        user.email = identity.email
        user.is_staff = identity.is_staff
        user.is_superuser = identity.is_superuser
        fields = ["email", "is_staff", "is_superuser"]
        if _uses_shadow_users(user_model):
            # The admin greets a user by short name (first_name): the email reads better than
            # the UUID that is the shadow user's username.
            user.first_name = identity.email[: user_model._meta.get_field("first_name").max_length]
            fields.append("first_name")
        if was_staff and not identity.is_staff and _uses_shadow_users(user_model):
            # A new unusable password changes the session hash: sessions still open end now.
            user.set_unusable_password()
            fields.append("password")
        user.save(update_fields=fields)
        _sync_role_groups(user, identity.roles)
    return user if identity.is_staff and user.is_active else None


class BazaarAdminBackend(ModelBackend):
    """Authenticates admin sign-ins against the auth service; permissions as ModelBackend's."""

    def authenticate(
        self,
        request: Any,
        username: str | None = None,
        password: str | None = None,
        email: str | None = None,
        **kwargs: Any,
    ) -> Any | None:
        login = (email or username or "").strip()
        if not login or not password:
            return None
        client_ip = client_address(request) if request is not None else "unknown"
        identity = _check_credentials(email=login, password=password, client_ip=client_ip)
        if identity is None:
            return None
        user = shadow_user_sync(identity)
        if user is None:
            logger.info("admin sign-in refused: no staff role", extra={"user_id": identity.user_id})
        return user
