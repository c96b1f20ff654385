"""The order service's side of its internal contracts (bazaar_common.contracts.http): the orders of a
customer it answers the profile service's export with, and the address fields it copies from profiles."""

from __future__ import annotations

import uuid

import pytest

from bazaar_common.contracts import http as internal
from bazaar_devtools.contract_checks import answer_is_the_contract, contract_paths, internal_routes
from order_service.orders.apis import AddressSerializer

pytestmark = pytest.mark.django_db


def test_every_internal_route_of_orders_has_a_contract():
    assert internal_routes() == contract_paths("orders")


def test_the_orders_of_a_customer_are_answered_as_the_contract(flow, customer_id, client_as):
    pending = flow.place()
    reserved = flow.place_reserved([(2, 1)])
    query = internal.CustomerOrdersQuery(customer_id=uuid.UUID(customer_id)).to_query()

    response = client_as("service:profiles", ("service",)).get(internal.ORDERS_OF_CUSTOMER.path, query)

    answer = answer_is_the_contract(internal.ORDERS_OF_CUSTOMER, response)
    assert [(str(order.id), order.status) for order in answer.results] == [(pending, "pending"), (reserved, "reserved")]
    assert answer.results[0].customer_id == uuid.UUID(customer_id)
    assert [line.product_id for line in answer.results[0].lines] == [1]


def test_checkout_takes_exactly_the_address_fields_profiles_answers():
    assert set(AddressSerializer().fields) == set(internal.ShippingAddress.model_fields)


def test_the_default_address_from_profiles_is_copied_into_the_order(flow, customer_id, neighbours):
    neighbours.addresses[customer_id] = {"full_name": "Lu Wei", "line1": "Quay 9", "city": "Cork", "country": "IE"}

    order = flow.get(flow.place())

    assert order["shipping_address"] == {
        "full_name": "Lu Wei",
        "line1": "Quay 9",
        "line2": "",
        "city": "Cork",
        "postal_code": "",
        "region": "",
        "country": "IE",
        "phone": "",
    }
