"""Fixtures for the catalog service's tests."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from factories import MerchantFactory, new_user_id

from bazaar_common.auth.testing import make_token


@pytest.fixture
def owner_id() -> str:
    return new_user_id()


@pytest.fixture
def merchant(db, owner_id):
    return MerchantFactory(owner=owner_id)


@pytest.fixture
def service_client(api_client):
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token('service:orders', ['service'])}")
    return api_client


@pytest.fixture
def shadow_staff():
    """``shadow_staff(user_id, role)``: the local user the admin sign-in keeps for a Bazaar user."""

    def make(user_id: str, role: str = "merchant"):
        user, _ = get_user_model().objects.get_or_create(username=user_id)
        user.is_staff = True
        user.is_superuser = role == "admin"
        user.save()
        if role in ("merchant", "support"):
            user.groups.add(Group.objects.get(name=role))
        return user

    return make
