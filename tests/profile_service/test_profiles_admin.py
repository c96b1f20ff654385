"""The profile service's Django admin: support reads everything and changes nothing; admins do all.

The shadow users are made here the way the Bazaar admin backend makes them at sign-in
(username = Bazaar user id, is_staff, the role's group); the "support" group's rights come from
this service's data migration.
"""

from __future__ import annotations

import uuid

import pytest
from django.contrib.auth.models import Group, User
from factories import AddressFactory, ProfileFactory
from fakes import CORRECT_PASSWORD, account, make_fake_auth

from bazaar_common.contracts import http as internal
from profile_service.profiles.models import Profile

pytestmark = pytest.mark.django_db


def _shadow_user(*, group: str | None = None, superuser: bool = False, staff: bool = True) -> User:
    user = User.objects.create(
        username=str(uuid.uuid4()), email="staff@bazaar.test", is_staff=staff, is_superuser=superuser
    )
    if group:
        user.groups.add(Group.objects.get(name=group))
    return user


@pytest.fixture
def profile():
    profile = ProfileFactory(display_name="Jane")
    AddressFactory(profile=profile, is_default_shipping=True)
    return profile


def test_migration_grants_support_view_permissions_only():
    group = Group.objects.get(name="support")

    assert sorted(group.permissions.values_list("codename", flat=True)) == ["view_address", "view_profile"]


def test_support_reads_profiles_and_addresses(client, profile):
    client.force_login(_shadow_user(group="support"))

    changelist = client.get("/admin/profiles/profile/")
    detail = client.get(f"/admin/profiles/profile/{profile.pk}/change/")
    addresses = client.get("/admin/profiles/address/")

    assert (changelist.status_code, detail.status_code, addresses.status_code) == (200, 200, 200)
    assert str(profile.user_id) in changelist.content.decode()
    assert detail.context["has_change_permission"] is False
    assert detail.context["has_delete_permission"] is False
    assert 'name="_save"' not in detail.content.decode()


def test_support_cannot_change_or_delete(client, profile):
    client.force_login(_shadow_user(group="support"))

    change = client.post(f"/admin/profiles/profile/{profile.pk}/change/", {"display_name": "Hacked"})
    delete = client.post(f"/admin/profiles/profile/{profile.pk}/delete/", {"post": "yes"})

    assert (change.status_code, delete.status_code) == (403, 403)
    profile.refresh_from_db()
    assert profile.display_name == "Jane"


def test_admin_can_change_and_delete(client, profile):
    client.force_login(_shadow_user(superuser=True))

    detail = client.get(f"/admin/profiles/profile/{profile.pk}/change/")
    delete = client.post(f"/admin/profiles/profile/{profile.pk}/delete/", {"post": "yes"})

    assert detail.status_code == 200
    assert detail.context["has_change_permission"] is True
    assert delete.status_code == 302
    assert not Profile.objects.filter(pk=profile.pk).exists()


def test_staff_without_a_profile_role_sees_nothing(client, profile):
    client.force_login(_shadow_user(group=None))  # e.g. a merchant: staff, but no group here

    assert client.get("/admin/profiles/profile/").status_code == 403


def test_a_customer_cannot_enter_the_admin(client):
    client.force_login(_shadow_user(staff=False))

    response = client.get("/admin/profiles/profile/")

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_the_erasure_record_is_read_only_even_for_admins(client):
    client.force_login(_shadow_user(superuser=True))

    response = client.get("/admin/profiles/eraseduser/add/")

    assert response.status_code == 403


def _staff_account(roles: list[str]) -> internal.Account:
    user_id = str(uuid.uuid4())
    return account(user_id, roles=roles, email=f"{roles[0]}-{user_id[:8]}@bazaar.test")


def test_support_signs_in_with_the_bazaar_account_and_reads_only(client, fake_services, profile):
    account = _staff_account(["support", "customer"])
    fake_services.serve(make_fake_auth({str(account.id): account}))

    login = client.post("/admin/login/?next=/admin/", {"username": account.email, "password": CORRECT_PASSWORD})

    assert login.status_code == 302
    assert login["Location"] == "/admin/"
    shadow = User.objects.get(username=str(account.id))
    assert list(shadow.groups.values_list("name", flat=True)) == ["support"]
    detail = client.get(f"/admin/profiles/profile/{profile.pk}/change/")
    assert detail.status_code == 200
    assert detail.context["has_change_permission"] is False
    assert client.post(f"/admin/profiles/profile/{profile.pk}/delete/", {"post": "yes"}).status_code == 403


def test_a_customer_account_cannot_sign_in_to_the_admin(client, fake_services):
    account = _staff_account(["customer"])
    fake_services.serve(make_fake_auth({str(account.id): account}))

    login = client.post("/admin/login/", {"username": account.email, "password": CORRECT_PASSWORD})

    assert login.status_code == 200  # the form again, with an error
    assert client.get("/admin/profiles/profile/").status_code == 302
