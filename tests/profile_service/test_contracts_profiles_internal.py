"""The profile service's internal endpoint agrees with its contract (bazaar_common.contracts.http):
the default shipping address the order service copies into an order."""

from __future__ import annotations

import pytest
from factories import AddressFactory, ProfileFactory

from bazaar_common.contracts import http as internal
from bazaar_devtools.contract_checks import answer_is_the_contract, contract_paths, internal_routes
from profile_service.profiles.apis import AddressOutputSerializer

pytestmark = pytest.mark.django_db


def test_every_internal_route_of_profiles_has_a_contract():
    assert internal_routes() == contract_paths("profiles")


def test_the_default_shipping_address_is_answered_as_the_contract(client_as):
    profile = ProfileFactory()
    address = AddressFactory(
        profile=profile, full_name="Kim Lee", line1="Harbour 3", line2="", city="Kiel", country="DE",
        postal_code="24103", region="", phone="", is_default_shipping=True,
    )  # fmt: skip

    response = client_as("service:orders", ("service",)).get(
        internal.PROFILES_DEFAULT_SHIPPING_ADDRESS.url(user_id=profile.user_id)
    )

    answer = answer_is_the_contract(internal.PROFILES_DEFAULT_SHIPPING_ADDRESS, response)
    assert answer == internal.DefaultShippingAddress(
        id=address.pk, full_name="Kim Lee", line1="Harbour 3", city="Kiel", postal_code="24103", country="DE"
    )


def test_an_address_a_customer_keeps_has_every_field_an_order_copies():
    assert set(internal.ShippingAddress.model_fields) <= set(AddressOutputSerializer().fields)
