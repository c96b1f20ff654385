"""Addresses under /api/v1/profiles/me/addresses: CRUD, validation, one default of each kind."""

from __future__ import annotations

import uuid

import pytest
from django.db import IntegrityError, transaction
from factories import AddressFactory, ProfileFactory

from profile_service.profiles.models import Address

ADDRESSES = "/api/v1/profiles/me/addresses"
pytestmark = pytest.mark.django_db

HOME = {
    "label": "Home",
    "full_name": "Jane Doe",
    "line1": "Friedrichstraße 1",
    "city": "Berlin",
    "postal_code": "10117",
    "country": "de",
    "phone": "+49 30 901820",
}


def _create(client, **overrides):
    response = client.post(ADDRESSES, {**HOME, **overrides}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def _defaults(user_id: str) -> dict[str, list[int]]:
    addresses = Address.objects.filter(profile__user_id=user_id)
    return {
        "shipping": sorted(a.id for a in addresses if a.is_default_shipping),
        "billing": sorted(a.id for a in addresses if a.is_default_billing),
    }


def test_create_address_normalises_and_returns_it(customer, user_id):
    response = customer.post(ADDRESSES, HOME, format="json")

    assert response.status_code == 201
    body = response.json()
    address = Address.objects.get(pk=body["id"])
    assert str(address.profile.user_id) == user_id
    assert body == {
        "id": address.id,
        "label": "Home",
        "full_name": "Jane Doe",
        "line1": "Friedrichstraße 1",
        "line2": "",
        "city": "Berlin",
        "postal_code": "10117",
        "region": "",
        "country": "DE",
        "phone": "+4930901820",
        # The first address becomes the default of both kinds.
        "is_default_shipping": True,
        "is_default_billing": True,
        "created_at": address.created_at.isoformat().replace("+00:00", "Z"),
        "updated_at": address.updated_at.isoformat().replace("+00:00", "Z"),
    }


def test_list_shows_only_the_callers_addresses(customer, user_id):
    mine = _create(customer)
    AddressFactory()  # someone else's

    response = customer.get(ADDRESSES)

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 1
    assert [a["id"] for a in body["results"]] == [mine["id"]]


def test_retrieve_update_and_delete(customer, user_id):
    address = _create(customer)
    url = f"{ADDRESSES}/{address['id']}"

    assert customer.get(url).json() == address

    updated = customer.patch(url, {"line2": "Hinterhaus", "city": "Potsdam"}, format="json")
    assert updated.status_code == 200
    assert (updated.json()["line2"], updated.json()["city"], updated.json()["line1"]) == (
        "Hinterhaus",
        "Potsdam",
        "Friedrichstraße 1",
    )

    deleted = customer.delete(url)
    assert deleted.status_code == 204
    assert deleted.content == b""
    assert customer.get(url).status_code == 404
    assert not Address.objects.filter(pk=address["id"]).exists()


def test_a_new_default_unsets_the_old_one(customer, user_id):
    first = _create(customer)
    second = _create(customer, label="Office")
    assert _defaults(user_id) == {"shipping": [first["id"]], "billing": [first["id"]]}
    assert (second["is_default_shipping"], second["is_default_billing"]) == (False, False)

    response = customer.patch(f"{ADDRESSES}/{second['id']}", {"is_default_shipping": True}, format="json")

    assert response.status_code == 200
    assert response.json()["is_default_shipping"] is True
    assert _defaults(user_id) == {"shipping": [second["id"]], "billing": [first["id"]]}


def test_creating_an_address_as_default_moves_the_default(customer, user_id):
    first = _create(customer)

    third = _create(customer, label="Parents", is_default_billing=True)

    assert _defaults(user_id) == {"shipping": [first["id"]], "billing": [third["id"]]}


def test_the_first_address_can_be_created_explicitly_not_default(customer, user_id):
    address = _create(customer, is_default_shipping=False)

    assert _defaults(user_id) == {"shipping": [], "billing": [address["id"]]}


def test_deleting_the_default_leaves_no_default(customer, user_id):
    first = _create(customer)
    _create(customer, label="Office")

    assert customer.delete(f"{ADDRESSES}/{first['id']}").status_code == 204

    assert _defaults(user_id) == {"shipping": [], "billing": []}


def test_unsetting_the_default_leaves_none(customer, user_id):
    first = _create(customer)

    response = customer.patch(f"{ADDRESSES}/{first['id']}", {"is_default_shipping": False}, format="json")

    assert response.status_code == 200
    assert _defaults(user_id) == {"shipping": [], "billing": [first["id"]]}


def test_database_refuses_two_default_shipping_addresses():
    profile = ProfileFactory()
    AddressFactory(profile=profile, is_default_shipping=True)

    with pytest.raises(IntegrityError), transaction.atomic():
        AddressFactory(profile=profile, is_default_shipping=True)


def test_database_refuses_two_default_billing_addresses():
    profile = ProfileFactory()
    AddressFactory(profile=profile, is_default_billing=True)

    with pytest.raises(IntegrityError), transaction.atomic():
        AddressFactory(profile=profile, is_default_billing=True)


def test_other_profiles_may_each_have_their_own_default():
    AddressFactory(is_default_shipping=True, is_default_billing=True)
    AddressFactory(is_default_shipping=True, is_default_billing=True)

    assert Address.objects.filter(is_default_shipping=True).count() == 2


def test_another_customers_address_is_not_found(customer, client_as):
    theirs = AddressFactory(is_default_shipping=True)
    url = f"{ADDRESSES}/{theirs.id}"

    assert customer.get(url).status_code == 404
    assert customer.patch(url, {"city": "Hamburg"}, format="json").status_code == 404
    assert customer.delete(url).status_code == 404

    theirs.refresh_from_db()
    assert theirs.city == "Berlin"


def test_a_customer_cannot_make_another_customers_address_theirs(customer, user_id):
    mine = _create(customer)
    other = ProfileFactory()

    response = customer.patch(f"{ADDRESSES}/{mine['id']}", {"profile": other.id}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == [{"field": "profile", "reason": "Unknown field."}]


@pytest.mark.parametrize(
    ("overrides", "errors"),
    [
        (
            {"country": "XX"},
            [{"field": "country", "reason": '"XX" is not an ISO 3166-1 alpha-2 country code.'}],
        ),
        (
            {"country": "DEU"},
            [{"field": "country", "reason": '"DEU" is not an ISO 3166-1 alpha-2 country code.'}],
        ),
        ({"full_name": ""}, [{"field": "full_name", "reason": "This field may not be blank."}]),
        ({"city": None}, [{"field": "city", "reason": "This field may not be null."}]),
        (
            {"postal_code": "10117; DROP"},
            [{"field": "postal_code", "reason": "Use letters, digits, spaces and hyphens only."}],
        ),
        (
            {"phone": "12345"},
            [
                {
                    "field": "phone",
                    "reason": "Enter a valid phone number in international format, starting with + "
                    "and the country code (e.g. +4930901820).",
                }
            ],
        ),
        ({"id": 5}, [{"field": "id", "reason": "This field is read-only."}]),
        ({"default": True}, [{"field": "default", "reason": "Unknown field."}]),
        (
            {"is_default_shipping": "sometimes"},
            [{"field": "is_default_shipping", "reason": "Must be a valid boolean."}],
        ),
    ],
)
def test_create_address_rejects_bad_input(customer, user_id, overrides, errors):
    response = customer.post(ADDRESSES, {**HOME, **overrides}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == errors
    assert Address.objects.count() == 0


def test_create_address_lists_every_missing_required_field(customer):
    response = customer.post(ADDRESSES, {}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"field": "full_name", "reason": "This field is required."},
        {"field": "line1", "reason": "This field is required."},
        {"field": "city", "reason": "This field is required."},
        {"field": "country", "reason": "This field is required."},
    ]


def test_update_validates_the_changed_fields(customer):
    address = _create(customer)

    response = customer.patch(f"{ADDRESSES}/{address['id']}", {"country": "ZZ"}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"field": "country", "reason": '"ZZ" is not an ISO 3166-1 alpha-2 country code.'}
    ]
    assert Address.objects.get(pk=address["id"]).country == "DE"


def test_address_count_is_capped(customer, user_id, settings):
    profile = ProfileFactory(user_id=uuid.UUID(user_id))
    AddressFactory.create_batch(20, profile=profile)

    response = customer.post(ADDRESSES, HOME, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == [{"field": "non_field_errors", "reason": "You can keep at most 20 addresses."}]
    assert Address.objects.filter(profile=profile).count() == 20


def test_unknown_address_id_is_404(customer):
    response = customer.get(f"{ADDRESSES}/999999")

    assert response.status_code == 404
    assert response.json()["status"] == 404
