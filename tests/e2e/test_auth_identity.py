"""Identity across the real platform: one staff account for every admin, refresh reuse, key rotation."""

from __future__ import annotations

import re
import time
import uuid

import jwt
import pytest
import requests

from bazaar_common.demo import DEMO_ADMIN, DEMO_CUSTOMER, DEMO_MERCHANT, DEMO_PASSWORD, DEMO_SUPPORT
from bazaar_devtools.platform import AUTH

ADMINS = ("auth", "catalog", "orders", "profiles")


def admin_sign_in(platform, service: str, email: str, password: str = DEMO_PASSWORD) -> requests.Response:
    """Sign in through the service's real Django admin login form (CSRF and all)."""
    admin = platform.url(service) + "/admin/"
    session = requests.Session()
    login_page = session.get(admin + "login/", timeout=10)
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login_page.text).group(1)
    return session.post(
        admin + "login/?next=/admin/",
        data={"username": email, "password": password, "csrfmiddlewaretoken": csrf},
        headers={"Referer": admin + "login/"},
        timeout=30,
    )


def entered(response: requests.Response) -> bool:
    return response.status_code == 200 and response.url.endswith("/admin/") and "Log out" in response.text


@pytest.mark.parametrize("service", ADMINS)
@pytest.mark.parametrize(
    ("account", "enters"),
    [(DEMO_ADMIN, True), (DEMO_SUPPORT, True), (DEMO_MERCHANT, True), (DEMO_CUSTOMER, False)],
    ids=["admin", "support", "merchant", "customer"],
)
def test_one_bazaar_account_signs_in_to_every_admin_by_role(platform, service, account, enters):
    response = admin_sign_in(platform, service, account.email)

    assert entered(response) is enters
    if not enters:
        assert "Please enter the correct" in response.text


@pytest.mark.parametrize("service", ADMINS)
def test_a_wrong_password_enters_no_admin(platform, service):
    assert not entered(admin_sign_in(platform, service, DEMO_ADMIN.email, "not-the-password"))


def test_removing_the_role_removes_admin_access_at_the_next_sign_in(platform):
    email = f"staff-{uuid.uuid4().hex[:8]}@example.com"
    password = f"Pw-{uuid.uuid4().hex}"
    registered = platform.api("POST", "/api/v1/auth/register", json={"email": email, "password": password})
    user_id = registered.json()["id"]
    admin_token = platform.token(DEMO_ADMIN.email)
    roles = f"/api/v1/auth/users/{user_id}/roles"
    granted = platform.api("POST", roles, admin_token, json={"role": "support"})
    assert granted.status_code == 200
    assert entered(admin_sign_in(platform, "orders", email, password))

    removed = platform.api("DELETE", f"{roles}/support", admin_token)

    assert removed.status_code == 200
    assert not entered(admin_sign_in(platform, "orders", email, password))


def test_refresh_rotation_and_reuse_detection_through_the_gateway(platform):
    email = f"rotate-{uuid.uuid4().hex[:8]}@example.com"
    password = f"Pw-{uuid.uuid4().hex}"
    platform.api("POST", "/api/v1/auth/register", json={"email": email, "password": password})
    pair = platform.api("POST", "/api/v1/auth/token", json={"email": email, "password": password}).json()

    refresh = "/api/v1/auth/token/refresh"
    rotated = platform.api("POST", refresh, json={"refresh": pair["refresh"]})
    replayed = platform.api("POST", refresh, json={"refresh": pair["refresh"]})
    after_reuse = platform.api("POST", refresh, json={"refresh": rotated.json()["refresh"]})

    assert rotated.status_code == 200
    assert replayed.status_code == 401
    assert after_reuse.status_code == 401


def test_key_rotation_old_and_new_tokens_are_accepted_by_every_service(platform):
    old_token = platform.token(DEMO_CUSTOMER.email)
    old_kid = jwt.get_unverified_header(old_token)["kid"]

    platform.platform.manage(AUTH, "rotate_signing_key")
    time.sleep(0.2)
    new_token = platform.token(DEMO_CUSTOMER.email)
    new_kid = jwt.get_unverified_header(new_token)["kid"]
    jwks = platform.api("GET", "/api/v1/auth/.well-known/jwks.json").json()

    assert new_kid != old_kid
    assert [key["kid"] for key in jwks["keys"]][-2:] == [old_kid, new_kid]

    def accepted(token: str) -> bool:
        # auth itself, and the order service, verifying locally with the keys they fetched
        return all(
            platform.api("GET", path, token).status_code == 200 for path in ("/api/v1/auth/me", "/api/v1/orders")
        )

    # verifiers that reloaded in the last JWT_JWKS_MIN_REFRESH_SECONDS wait that long before re-fetching
    deadline = time.monotonic() + 10
    while not accepted(new_token) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert accepted(new_token)
    assert accepted(old_token)
