"""Reads of profiles and addresses."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.db.models import QuerySet
from django.http import Http404

from bazaar_common.contracts import http as internal
from profile_service.profiles import remote
from profile_service.profiles.models import Address, ErasedUser, Profile


def profile_get(*, user_id: uuid.UUID) -> Profile | None:
    return Profile.objects.filter(user_id=user_id).first()


def profile_is_erased(*, user_id: uuid.UUID) -> bool:
    return ErasedUser.objects.filter(user_id=user_id).exists()


def address_list(*, profile: Profile) -> QuerySet[Address]:
    return Address.objects.filter(profile=profile).order_by("id")


def address_get(*, profile: Profile, address_id: int) -> Address:
    """One of ``profile``'s addresses; someone else's address is simply not found (404)."""
    address = Address.objects.filter(profile=profile, pk=address_id).first()
    if address is None:
        raise Http404("No such address.")
    return address


def address_default_shipping_get(*, user_id: uuid.UUID) -> Address | None:
    return Address.objects.filter(profile__user_id=user_id, is_default_shipping=True).first()


@dataclass(frozen=True)
class PrivacyExport:
    """Everything the platform holds about one user, gathered from every service."""

    account: internal.Account
    profile: Profile
    addresses: list[Address]
    orders: list[internal.OrderDocument]


def privacy_export_gather(*, profile: Profile) -> PrivacyExport:
    """Collect the export; any service failing raises ServiceUnavailable (never a partial export)."""
    account = remote.auth_account_get(user_id=profile.user_id)
    orders = remote.orders_list_for_customer(customer_id=profile.user_id)
    return PrivacyExport(
        account=account,
        profile=profile,
        addresses=list(address_list(profile=profile)),
        orders=orders,
    )
