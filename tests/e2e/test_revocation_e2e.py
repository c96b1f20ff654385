"""Revocation at once, against the real platform (issue 11).

Access tokens are verified locally by the gateway and by every service, so a token stays valid by
its signature and ``exp`` for minutes. The invariant: once auth has answered a deactivation, a
password change or an admin's "sign out everywhere", every access token issued before it is
refused on its very next request — at the gateway (whose verified-token cache was warm with it)
and directly on the port of each service that takes user tokens — and its refresh token cannot
mint a new one. Nothing here waits: each check is the first request after auth's answer.
"""

from __future__ import annotations

import uuid

import requests

from bazaar_common.demo import DEMO_ADMIN, DEMO_PASSWORD

REVOKED = "Token has been revoked; sign in again."
# (service, a read that needs the user's token); the gateway routes each of them to that service.
USER_READS = (
    ("auth", "/api/v1/auth/me"),
    ("orders", "/api/v1/orders"),
    ("orders", "/api/v1/cart"),
    ("profiles", "/api/v1/profiles/me"),
)


def _account(platform) -> tuple[str, str]:
    email = f"revoked-{uuid.uuid4().hex[:10]}@example.com"
    password = f"Pw-{uuid.uuid4().hex}"
    response = platform.api("POST", "/api/v1/auth/register", json={"email": email, "password": password})
    assert response.status_code == 201, response.text
    return email, password


def _session(platform, email: str, password: str) -> dict[str, str]:
    response = platform.api("POST", "/api/v1/auth/token", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    return response.json()


def _answers(platform, access: str) -> dict[str, int]:
    """Status of every user read, through the gateway and directly on the service's own port."""
    headers = {"Authorization": f"Bearer {access}"}
    seen = {}
    for service, path in USER_READS:
        seen[f"gateway {path}"] = platform.api("GET", path, access).status_code
        seen[f"{service} {path}"] = requests.get(platform.url(service) + path, headers=headers, timeout=15).status_code
    return seen


def _assert_refused_everywhere(platform, access: str) -> None:
    headers = {"Authorization": f"Bearer {access}"}
    for service, path in USER_READS:
        for where, response in (
            ("gateway", platform.api("GET", path, access)),
            (service, requests.get(platform.url(service) + path, headers=headers, timeout=15)),
        ):
            assert response.status_code == 401, (where, path, response.status_code, response.text[:200])
            assert response.headers["Content-Type"].startswith("application/problem+json")
            assert response.json()["detail"] == REVOKED, (where, path, response.text[:200])


def _refresh(platform, refresh: str) -> requests.Response:
    return platform.api("POST", "/api/v1/auth/token/refresh", json={"refresh": refresh})


def _all_ok(platform, access: str) -> None:
    answers = _answers(platform, access)
    assert set(answers.values()) == {200}, answers


def test_deactivation_refuses_every_earlier_token_at_once_everywhere(platform):
    # Given a customer signed in on two devices, both tokens in use (the gateway's cache is warm)
    email, password = _account(platform)
    phone, laptop = _session(platform, email, password), _session(platform, email, password)
    _all_ok(platform, phone["access"])
    _all_ok(platform, laptop["access"])

    # When the customer deactivates the account from the phone
    deactivated = platform.api("POST", "/api/v1/auth/me/deactivate", phone["access"], json={"password": password})
    assert deactivated.status_code == 204, deactivated.text

    # Then the very next request of either session is refused at the gateway and on every port
    _assert_refused_everywhere(platform, laptop["access"])
    _assert_refused_everywhere(platform, phone["access"])
    # and neither refresh token mints a new access token, nor can the account sign in again
    assert _refresh(platform, laptop["refresh"]).status_code == 401
    assert _refresh(platform, phone["refresh"]).status_code == 401
    signed_in = platform.api("POST", "/api/v1/auth/token", json={"email": email, "password": password})
    assert signed_in.status_code == 401, signed_in.text


def test_password_change_ends_the_other_sessions_at_once_but_not_the_new_one(platform):
    # Given a customer signed in twice, the other session's token in use
    email, password = _account(platform)
    current, stolen = _session(platform, email, password), _session(platform, email, password)
    _all_ok(platform, stolen["access"])

    # When the password is changed from the current session
    changed = platform.api(
        "POST",
        "/api/v1/auth/password/change",
        current["access"],
        json={"current_password": password, "new_password": f"New-{uuid.uuid4().hex}"},
    )
    assert changed.status_code == 200, changed.text

    # Then the sessions from before the change are refused everywhere on their next request
    _assert_refused_everywhere(platform, stolen["access"])
    _assert_refused_everywhere(platform, current["access"])
    assert _refresh(platform, stolen["refresh"]).status_code == 401
    # while the pair the change answered with works everywhere, and refreshes
    _all_ok(platform, changed.json()["access"])
    renewed = _refresh(platform, changed.json()["refresh"])
    assert renewed.status_code == 200, renewed.text
    _all_ok(platform, renewed.json()["access"])


def test_an_admin_sign_out_everywhere_refuses_the_users_tokens_at_once(platform):
    # Given a customer whose token is in use, and an admin
    email, password = _account(platform)
    session = _session(platform, email, password)
    _all_ok(platform, session["access"])
    user_id = platform.api("GET", "/api/v1/auth/me", session["access"]).json()["id"]
    admin = platform.token(DEMO_ADMIN.email, DEMO_PASSWORD)

    # When the admin signs the user out everywhere (through the gateway)
    signed_out = platform.api("POST", f"/api/v1/auth/users/{user_id}/sign-out", admin)
    assert signed_out.status_code == 204, signed_out.text

    # Then the user's token and refresh token are refused at once, everywhere
    _assert_refused_everywhere(platform, session["access"])
    assert _refresh(platform, session["refresh"]).status_code == 401
    # but the account is still active: a new sign-in works everywhere, and so does the admin
    _all_ok(platform, _session(platform, email, password)["access"])
    assert platform.api("GET", "/api/v1/auth/me", admin).status_code == 200


def test_only_an_admin_may_sign_someone_out(platform):
    email, password = _account(platform)
    victim = _session(platform, email, password)
    user_id = platform.api("GET", "/api/v1/auth/me", victim["access"]).json()["id"]
    _other_email, customer = platform.register_customer()

    through_gateway = platform.api("POST", f"/api/v1/auth/users/{user_id}/sign-out", customer)
    direct = requests.post(
        f"{platform.url('auth')}/api/v1/auth/users/{user_id}/sign-out",
        headers={"Authorization": f"Bearer {customer}"},
        timeout=15,
    )

    assert (through_gateway.status_code, direct.status_code) == (403, 403), (through_gateway.text, direct.text)
    _all_ok(platform, victim["access"])  # nothing was revoked
