"""Validly signed tokens with claims of the wrong type at the edge (issue 11): a 401 problem, never
a 500, whether the gateway has seen the token before or not."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db(databases=[])


@pytest.mark.parametrize(
    "claims",
    [
        {"exp": "9999999999"},
        {"exp": None},
        {"exp": 1e400},
        {"iat": "yesterday"},
        {"exp": [9999999999]},
    ],
    ids=["exp-string", "exp-missing", "exp-infinite", "iat-string", "exp-list"],
)
def test_a_signed_token_with_a_malformed_time_claim_is_401_on_a_protected_route(gateway, backend, token_for, claims):
    orders = backend("orders")
    token = token_for("7b1d8f1e-0000-4000-8000-000000000002", ("customer",), **claims)

    answers = [gateway.request("GET", "/api/v1/orders", headers={"Authorization": f"Bearer {token}"}) for _ in range(2)]

    for response in answers:
        assert response.status == 401, response.data[:300]
        assert response.headers["Content-Type"] == "application/problem+json"
        assert response.json()["status"] == 401
    assert orders.hits == 0


def test_a_malformed_token_on_a_public_route_is_passed_on_as_anonymous(gateway, backend, token_for):
    catalog = backend("catalog")
    token = token_for("7b1d8f1e-0000-4000-8000-000000000003", ("customer",), exp="9999999999")

    response = gateway.request("GET", "/api/v1/catalog/products", headers={"Authorization": f"Bearer {token}"})

    assert response.status == 200
    assert catalog.hits == 1
