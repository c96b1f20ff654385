"""GET /internal/v1/profiles/{user_id}/default-shipping-address: for checkout in orders."""

from __future__ import annotations

import uuid

import pytest
from factories import AddressFactory, ProfileFactory

pytestmark = pytest.mark.django_db


def _url(user_id) -> str:
    return f"/internal/v1/profiles/{user_id}/default-shipping-address"


@pytest.fixture
def service(client_as):
    return client_as("service:orders", ("service",))


def test_returns_the_default_shipping_address(service):
    profile = ProfileFactory()
    AddressFactory(profile=profile, line1="Billing Road 1", is_default_billing=True)
    shipping = AddressFactory(
        profile=profile,
        full_name="Jane Doe",
        line1="Shipping Street 2",
        line2="c/o Smith",
        city="Hamburg",
        postal_code="20095",
        region="HH",
        country="DE",
        phone="+4940123456",
        is_default_shipping=True,
    )

    response = service.get(_url(profile.user_id))

    assert response.status_code == 200
    assert response.json() == {
        "id": shipping.id,
        "full_name": "Jane Doe",
        "line1": "Shipping Street 2",
        "line2": "c/o Smith",
        "city": "Hamburg",
        "postal_code": "20095",
        "region": "HH",
        "country": "DE",
        "phone": "+4940123456",
    }


def test_404_when_no_default_shipping_address(service):
    profile = ProfileFactory()
    AddressFactory(profile=profile, is_default_shipping=False, is_default_billing=True)

    response = service.get(_url(profile.user_id))

    assert response.status_code == 404
    assert response.json()["detail"] == "Not found."


def test_404_when_no_profile(service):
    assert service.get(_url(uuid.uuid4())).status_code == 404


@pytest.mark.parametrize("roles", [("customer",), ("admin",), ("support",)])
def test_users_are_refused_even_for_their_own_address(client_as, roles):
    profile = ProfileFactory()
    AddressFactory(profile=profile, is_default_shipping=True)

    response = client_as(str(profile.user_id), roles).get(_url(profile.user_id))

    assert response.status_code == 403
    assert response.json()["status"] == 403


def test_no_token_is_401(api_client):
    assert api_client.get(_url(uuid.uuid4())).status_code == 401
