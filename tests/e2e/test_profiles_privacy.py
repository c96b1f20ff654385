"""Profiles end to end: creation by the registration message, export and erasure across services.

Runs the real platform (gateway, auth, catalog, orders, profiles and their workers) as processes.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
import pytest

from bazaar_common.demo import DEMO_SUPPORT

ME = "/api/v1/profiles/me"


@dataclass(frozen=True)
class Shopper:
    email: str
    password: str
    token: str
    user_id: str


def _wait(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def _register(platform) -> Shopper:
    email = f"privacy-{uuid.uuid4().hex[:10]}@example.com"
    password = f"Pw-{uuid.uuid4().hex}"
    response = platform.api("POST", "/api/v1/auth/register", json={"email": email, "password": password})
    assert response.status_code == 201, response.text
    token = platform.token(email, password)
    user_id = jwt.decode(token, options={"verify_signature": False})["sub"]
    return Shopper(email, password, token, user_id)


def _login_status(platform, shopper: Shopper) -> int:
    response = platform.api("POST", "/api/v1/auth/token", json={"email": shopper.email, "password": shopper.password})
    return response.status_code


@pytest.fixture
def shopper(platform) -> Shopper:
    return _register(platform)


def test_registration_message_creates_the_profile(platform, shopper):
    support = platform.token(DEMO_SUPPORT.email)

    # A staff read never creates a profile: only the auth service's user_registered message can.
    response = _wait(
        lambda: (r := platform.api("GET", f"/api/v1/profiles/{shopper.user_id}", support)).status_code == 200 and r,
        30,
        "the profile created from user_registered",
    )

    assert response.json()["user_id"] == shopper.user_id
    assert response.json()["addresses"] == []


def test_customer_edits_profile_and_addresses_and_another_customer_cannot_see_them(platform, shopper):
    patched = platform.api("PATCH", ME, shopper.token, json={"display_name": "Jane", "phone": "+4930901820"})
    created = platform.api(
        "POST",
        f"{ME}/addresses",
        shopper.token,
        json={"full_name": "Jane Doe", "line1": "Main Street 1", "city": "Berlin", "country": "DE"},
    )
    other = _register(platform)

    assert patched.status_code == 200, patched.text
    assert patched.json()["phone"] == "+4930901820"
    assert created.status_code == 201, created.text
    assert created.json()["is_default_shipping"] is True
    assert platform.api("GET", f"/api/v1/profiles/{shopper.user_id}", other.token).status_code == 404
    assert platform.api("GET", f"{ME}/addresses/{created.json()['id']}", other.token).status_code == 404


def test_export_gathers_account_profile_addresses_and_orders(platform, shopper):
    platform.api("PATCH", ME, shopper.token, json={"display_name": "Jane"})
    address = platform.api(
        "POST",
        f"{ME}/addresses",
        shopper.token,
        json={"full_name": "Jane Doe", "line1": "Main Street 1", "city": "Berlin", "country": "DE"},
    ).json()

    response = platform.api("GET", f"{ME}/export", shopper.token)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["user_id"] == shopper.user_id
    assert (body["account"]["id"], body["account"]["email"]) == (shopper.user_id, shopper.email)
    assert body["profile"]["display_name"] == "Jane"
    assert [a["id"] for a in body["addresses"]] == [address["id"]]
    assert body["orders"] == []  # a new customer: the order service was asked and has none


def test_export_with_the_order_service_down_is_503(platform, shopper):
    try:
        for proc in platform.instances("orders"):
            platform.stop_instance(proc)
        _wait(lambda: not platform.registry.lookup("orders"), 15, "orders gone from the registry")

        response = platform.api("GET", f"{ME}/export", shopper.token)

        assert response.status_code == 503, response.text
        assert int(response.headers["Retry-After"]) >= 1
        assert response.json()["status"] == 503
        assert "orders" not in response.json()
    finally:
        platform.ensure_one_instance_each()


def test_erasure_waits_for_a_stopped_auth_worker_then_completes(platform, shopper):
    support = platform.token(DEMO_SUPPORT.email)
    platform.api("GET", ME, shopper.token)
    try:
        for proc in platform.workers("auth"):
            platform.stop_instance(proc)

        wrong = platform.api("DELETE", ME, shopper.token, json={"password": "not-the-password"})
        erased = platform.api("DELETE", ME, shopper.token, json={"password": shopper.password})
        again = platform.api("DELETE", ME, shopper.token, json={"password": shopper.password})

        assert wrong.status_code == 403, wrong.text
        assert wrong.json()["errors"] == [{"field": "password", "reason": "The password is incorrect."}]
        assert (erased.status_code, again.status_code) == (204, 204)
        assert platform.api("GET", ME, shopper.token).status_code == 410
        assert platform.api("GET", f"/api/v1/profiles/{shopper.user_id}", support).status_code == 404
        # auth has not consumed USER_ERASED yet: its worker is down, the message waits.
        time.sleep(2)
        assert _login_status(platform, shopper) == 200

        platform.start_worker("auth")

        _wait(lambda: _login_status(platform, shopper) == 401, 60, "auth to deactivate the account")
    finally:
        platform.ensure_one_instance_each()


def _buy_one_product(platform, shopper: Shopper) -> dict:
    products = platform.api("GET", "/api/v1/catalog/products", params={"page_size": 50}).json()["results"]
    product = next(p for p in products if p["available"] > 0)
    response = platform.api(
        "POST",
        "/api/v1/orders",
        shopper.token,
        json={"items": [{"product_id": product["id"], "quantity": 1}]},
        headers={"Idempotency-Key": uuid.uuid4().hex},
    )
    assert response.status_code == 202, response.text
    return response.json()


def test_checkout_copies_the_default_address_then_export_and_erasure_cover_the_order(platform, shopper):
    address = {
        "full_name": "Jane Doe",
        "line1": "Main Street 1",
        "line2": "",
        "city": "Berlin",
        "postal_code": "10115",
        "region": "",
        "country": "DE",
        "phone": "+4930901820",
    }
    created = platform.api("POST", f"{ME}/addresses", shopper.token, json=address)
    assert created.status_code == 201, created.text

    order = _buy_one_product(platform, shopper)

    assert order["shipping_address"] == address
    export = platform.api("GET", f"{ME}/export", shopper.token)
    assert export.status_code == 200, export.text
    assert [o["id"] for o in export.json()["orders"]] == [order["id"]]
    assert export.json()["orders"][0]["shipping_address"] == address

    assert platform.api("DELETE", ME, shopper.token, json={"password": shopper.password}).status_code == 204

    support = platform.token(DEMO_SUPPORT.email)

    def anonymised_order() -> dict | None:
        body = platform.api("GET", f"/api/v1/orders/{order['id']}", support).json()
        return body if body["customer_email"] is None and body["shipping_address"] is None else None

    after = _wait(anonymised_order, 60, "the order service to anonymise the order")
    assert after["totals"] == order["totals"]
    assert [line["product_id"] for line in after["lines"]] == [line["product_id"] for line in order["lines"]]
    _wait(lambda: _login_status(platform, shopper) == 401, 60, "auth to deactivate the account")
