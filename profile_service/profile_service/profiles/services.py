"""Writes: profiles, addresses, and erasure. Each runs inside one transaction."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from bazaar_common import contracts
from bazaar_common.domain import InvalidInput
from bazaar_common.outbox.services import outbox_enqueue
from profile_service.profiles import reference, remote
from profile_service.profiles.exceptions import PasswordIncorrect, ProfileErased
from profile_service.profiles.models import Address, ErasedUser, Profile
from profile_service.profiles.selectors import profile_get, profile_is_erased

logger = logging.getLogger(__name__)

PROFILE_FIELDS = frozenset(
    {
        "display_name",
        "phone",
        "date_of_birth",
        "language",
        "currency",
        "marketing_consent",
        "notification_channels",
    }
)
ADDRESS_FIELDS = frozenset(
    {
        "label",
        "full_name",
        "line1",
        "line2",
        "city",
        "postal_code",
        "region",
        "country",
        "phone",
        "is_default_shipping",
        "is_default_billing",
    }
)
DEFAULT_FLAGS = ("is_default_shipping", "is_default_billing")


def _lock_user(user_id: uuid.UUID) -> None:
    """Serialise creating and erasing one user's profile: both check for an erasure, then write.

    Must run inside a transaction. On PostgreSQL a transaction-scoped advisory lock keyed by the
    user id; SQLite needs none because its write transactions begin IMMEDIATE (one at a time).
    """
    if connection.vendor != "postgresql":
        return
    key = int.from_bytes(user_id.bytes[:8], "big", signed=True)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])


def _create_unless_erased(user_id: uuid.UUID) -> Profile | None:
    with transaction.atomic():
        _lock_user(user_id)
        if profile_is_erased(user_id=user_id):
            return None
        # The unique user_id makes this safe even without the lock: a concurrent creator's
        # insert fails and get_or_create reads the row that won.
        profile, _ = Profile.objects.get_or_create(user_id=user_id)
        return profile


def profile_ensure(*, user_id: uuid.UUID) -> Profile:
    """The user's profile, created on first use, so its owner never meets a 404.

    Raises :class:`ProfileErased` once the user has been erased.
    """
    profile = profile_get(user_id=user_id)
    if profile is not None:
        return profile
    profile = _create_unless_erased(user_id)
    if profile is None:
        raise ProfileErased()
    return profile


def profile_create_for_registration(*, user_id: uuid.UUID) -> Profile | None:
    """Handle ``user_registered``: create the profile once; never for an erased user."""
    profile = _create_unless_erased(user_id)
    if profile is None:
        logger.info("registration of an erased user ignored", extra={"user_id": str(user_id)})
    return profile


def _check_sms_needs_phone(profile: Profile) -> None:
    if reference.CHANNEL_SMS in profile.notification_channels and not profile.phone:
        raise InvalidInput({"preferences": {"notification_channels": ["SMS notifications need a phone number."]}})


def profile_update(*, profile: Profile, changes: Mapping[str, Any]) -> Profile:
    """Apply validated ``changes`` (model field names); records when marketing consent changed."""
    unknown = set(changes) - PROFILE_FIELDS
    if unknown:
        raise ValueError(f"not profile fields: {sorted(unknown)}")
    with transaction.atomic():
        # Lock the row: two concurrent edits apply one after the other, none is lost.
        locked = Profile.objects.select_for_update().get(pk=profile.pk)
        updated: list[str] = []
        for name, value in changes.items():
            if getattr(locked, name) != value:
                setattr(locked, name, value)
                updated.append(name)
        if "marketing_consent" in updated:
            locked.marketing_consent_changed_at = timezone.now()
            updated.append("marketing_consent_changed_at")
        _check_sms_needs_phone(locked)
        if updated:
            locked.save(update_fields=[*updated, "updated_at"])
    return locked


def _lock_profile(profile: Profile) -> Profile:
    return Profile.objects.select_for_update().get(pk=profile.pk)


def _unset_other_defaults(address: Address, flags: list[str]) -> None:
    """Clear the old default(s) first, so the partial unique constraints never see two."""
    for flag in flags:
        Address.objects.filter(profile_id=address.profile_id, **{flag: True}).exclude(pk=address.pk).update(
            **{flag: False, "updated_at": timezone.now()}
        )


def address_create(*, profile: Profile, data: Mapping[str, Any]) -> Address:
    """Add an address. The first address becomes the default of each kind not chosen explicitly."""
    unknown = set(data) - ADDRESS_FIELDS
    if unknown:
        raise ValueError(f"not address fields: {sorted(unknown)}")
    with transaction.atomic():
        _lock_profile(profile)
        existing = Address.objects.filter(profile=profile)
        if existing.count() >= reference.MAX_ADDRESSES_PER_PROFILE:
            raise InvalidInput(
                {"non_field_errors": [f"You can keep at most {reference.MAX_ADDRESSES_PER_PROFILE} addresses."]}
            )
        values = dict(data)
        for flag in DEFAULT_FLAGS:
            if flag not in values:
                values[flag] = not existing.filter(**{flag: True}).exists()
        address = Address(profile=profile, **values)
        _unset_other_defaults(address, [flag for flag in DEFAULT_FLAGS if values[flag]])
        address.save()
    return address


def address_update(*, address: Address, changes: Mapping[str, Any]) -> Address:
    """Change an address; making it a default unsets the previous default in the same transaction."""
    unknown = set(changes) - ADDRESS_FIELDS
    if unknown:
        raise ValueError(f"not address fields: {sorted(unknown)}")
    with transaction.atomic():
        _lock_profile(address.profile)
        locked = Address.objects.select_for_update().get(pk=address.pk)
        updated = [name for name, value in changes.items() if getattr(locked, name) != value]
        for name in updated:
            setattr(locked, name, changes[name])
        _unset_other_defaults(locked, [flag for flag in DEFAULT_FLAGS if flag in updated and changes[flag]])
        if updated:
            locked.save(update_fields=[*updated, "updated_at"])
    return locked


def address_delete(*, address: Address) -> None:
    """Delete an address. A deleted default leaves no default: we do not guess the next one."""
    with transaction.atomic():
        _lock_profile(address.profile)
        Address.objects.filter(pk=address.pk).delete()


def profile_erase(*, user_id: uuid.UUID, password: str) -> bool:
    """Erase the user everywhere: delete profile and addresses here, and tell auth and orders.

    The password is checked by the auth service first. Then one transaction deletes the profile,
    records the erasure and writes ``USER_ERASED`` to the outbox, so the other services erase
    their part whenever they can (their message waits in the queue if they are down).
    Returns False when the user had already been erased (the request is idempotent).
    """
    if profile_is_erased(user_id=user_id):
        return False
    if not remote.auth_password_verify(user_id=user_id, password=password):
        raise PasswordIncorrect()
    with transaction.atomic():
        _lock_user(user_id)
        if profile_is_erased(user_id=user_id):
            return False  # a concurrent request erased it meanwhile
        Profile.objects.filter(user_id=user_id).delete()  # addresses go with it (cascade)
        ErasedUser.objects.create(user_id=user_id)
        outbox_enqueue(contracts.UserErased(user_id=str(user_id)))
    logger.info("user erased", extra={"user_id": str(user_id)})
    return True
