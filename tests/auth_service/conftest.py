"""Fixtures of the auth service's tests.

The auth service signs with its own key ring (a throw-away directory for the test session). The
platform verifier in these tests trusts both that ring's published keys and the shared test key
(``client_as`` tokens), through one JWKS file.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator

import pytest
from auth_factories import PASSWORD, UserFactory  # noqa: I001 - this suite's factories module
from rest_framework.test import APIClient

from auth_service.accounts.hashers import BazaarArgon2PasswordHasher
from auth_service.accounts.keys import key_ring
from bazaar_common.auth import keys as platform_keys
from bazaar_common.auth import testing as auth_testing
from bazaar_common.demo import DEMO_ACCOUNTS, DEMO_PASSWORD


@pytest.fixture(scope="session")
def session_keys_dir() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="bazaar-auth-keys-") as path:
        yield path


def trust_ring_and_test_key() -> str:
    """Point the platform verifier at a JWKS holding the ring's keys and the shared test key."""
    path = auth_testing.install_test_jwks()
    with open(path) as file:
        document = json.load(file)
    document["keys"].extend(key_ring().jwks()["keys"])
    with open(path, "w") as file:
        json.dump(document, file)
    platform_keys.default_keyset.reset()
    return path


@pytest.fixture(autouse=True)
def _auth_test_setup(settings, session_keys_dir, monkeypatch) -> Iterator[None]:
    settings.JWT_SIGNING_KEYS_SOURCE = "dir"
    settings.JWT_SIGNING_KEYS_DIR = session_keys_dir
    settings.JWT_CURRENT_KID = ""
    settings.DEBUG = True  # lets the test ring generate its first key
    # Argon2 stays the algorithm; cheaper parameters keep the suite fast (production: hashers.py).
    monkeypatch.setattr(BazaarArgon2PasswordHasher, "time_cost", 1)
    monkeypatch.setattr(BazaarArgon2PasswordHasher, "memory_cost", 256)
    monkeypatch.setattr(BazaarArgon2PasswordHasher, "parallelism", 1)
    path = trust_ring_and_test_key()
    yield
    os.unlink(path)
    auth_testing.install_test_jwks()  # leave the shared test key trusted, as the root conftest does


@pytest.fixture
def user(db):
    return UserFactory()


@pytest.fixture
def admin_user(db):
    return UserFactory(roles=["customer", "admin"], is_staff=True, is_superuser=True)


@pytest.fixture
def password() -> str:
    return PASSWORD


@pytest.fixture
def login(api_client):
    """``login(email, password)`` → the token pair, through the API."""

    def do(email: str, password: str = PASSWORD, client: APIClient | None = None) -> dict:
        response = (client or api_client).post(
            "/api/v1/auth/token", {"email": email, "password": password}, format="json"
        )
        assert response.status_code == 200, response.content
        return response.json()

    return do


@pytest.fixture
def bearer_client():
    """``bearer_client(access)`` → an APIClient sending that access token."""

    def make(access: str) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
        return client

    return make


@pytest.fixture
def service_client_api(settings, api_client) -> APIClient:
    """An APIClient authenticated as the orders service with a real service token."""
    settings.SERVICE_CREDENTIALS = "orders:orders-secret,profiles:profiles-secret"
    response = api_client.post(
        "/internal/v1/auth/service-token",
        {"client_id": "orders", "client_secret": "orders-secret"},
        format="json",
    )
    assert response.status_code == 200, response.content
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {response.json()['access']}")
    return client


@pytest.fixture
def demo_accounts():
    return DEMO_ACCOUNTS, DEMO_PASSWORD
