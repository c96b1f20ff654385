"""Who reads which profile: the owner, support and admin; another customer gets 404."""

from __future__ import annotations

import uuid

import pytest
from factories import AddressFactory, ProfileFactory

from profile_service.profiles.models import Profile

pytestmark = pytest.mark.django_db


def _url(user_id) -> str:
    return f"/api/v1/profiles/{user_id}"


@pytest.fixture
def someone():
    profile = ProfileFactory(display_name="Someone", phone="+4930901820")
    address = AddressFactory(profile=profile, is_default_shipping=True)
    return profile, address


@pytest.mark.parametrize("role", ["support", "admin"])
def test_staff_read_any_profile_with_addresses(client_as, someone, role):
    profile, address = someone

    response = client_as(str(uuid.uuid4()), (role,)).get(_url(profile.user_id))

    assert response.status_code == 200
    body = response.json()
    assert (body["user_id"], body["display_name"], body["phone"]) == (
        str(profile.user_id),
        "Someone",
        "+4930901820",
    )
    assert [a["id"] for a in body["addresses"]] == [address.id]
    assert body["addresses"][0]["is_default_shipping"] is True


def test_another_customer_gets_404(client_as, someone):
    profile, _ = someone

    response = client_as(str(uuid.uuid4()), ("customer",)).get(_url(profile.user_id))

    assert response.status_code == 404
    assert response.json() == {
        "type": "about:blank",
        "title": "Not found",
        "status": 404,
        "detail": "Not found.",
        "code": "not_found",
    }


def test_a_merchant_is_not_staff_either(client_as, someone):
    profile, _ = someone

    response = client_as(str(uuid.uuid4()), ("merchant", "customer")).get(_url(profile.user_id))

    assert response.status_code == 404


def test_customer_reads_own_profile_by_id(customer, user_id):
    response = customer.get(_url(user_id))

    assert response.status_code == 200
    assert response.json()["user_id"] == user_id
    assert response.json()["addresses"] == []


def test_staff_reading_a_missing_profile_gets_404_and_creates_nothing(client_as):
    missing = uuid.uuid4()

    response = client_as(str(uuid.uuid4()), ("support",)).get(_url(missing))

    assert response.status_code == 404
    assert not Profile.objects.filter(user_id=missing).exists()


def test_staff_cannot_change_another_profile_through_me(client_as, someone):
    """``/me`` is always the caller's own: staff editing goes through the admin, not the API."""
    profile, _ = someone
    staff_id = str(uuid.uuid4())

    response = client_as(staff_id, ("support",)).patch("/api/v1/profiles/me", {"display_name": "Hacked"}, format="json")

    assert response.status_code == 200
    assert response.json()["user_id"] == staff_id
    profile.refresh_from_db()
    assert profile.display_name == "Someone"


def test_reading_by_id_needs_a_token(api_client, someone):
    profile, _ = someone

    assert api_client.get(_url(profile.user_id)).status_code == 401


def test_a_malformed_user_id_is_404(client_as):
    response = client_as(str(uuid.uuid4()), ("support",)).get("/api/v1/profiles/not-a-uuid")

    assert response.status_code == 404
