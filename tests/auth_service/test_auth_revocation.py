"""Revocation at once: every session of a user ends on its next request, wherever it is sent."""

from __future__ import annotations

import pytest
from auth_factories import PASSWORD, UserFactory  # noqa: I001 - this suite's factories module

from auth_service.accounts import services
from bazaar_common.auth import revocation
from bazaar_common.auth.tokens import verify_access_token
from bazaar_common.outbox.models import OutboxMessage

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN = "/api/v1/auth/token"
ME = "/api/v1/auth/me"
SERVICE_TOKEN = "/internal/v1/auth/service-token"


def test_deactivation_revokes_every_access_token_at_once(api_client, login, bearer_client):
    user = UserFactory(email="noah@example.com")
    first, second = login("noah@example.com"), login("noah@example.com")
    me = bearer_client(first["access"])

    assert me.post("/api/v1/auth/me/deactivate", {"password": PASSWORD}, format="json").status_code == 204

    # then: the other session's token is refused on the next request, though its signature and
    # expiry are still valid, and the revocation left through the outbox as well
    other = bearer_client(second["access"]).get(ME)
    assert other.status_code == 401
    assert other.json()["detail"] == "Token has been revoked; sign in again."
    assert verify_access_token(second["access"]).id == str(user.pk)
    assert revocation.not_before_ms(str(user.pk)) is not None
    message = OutboxMessage.objects.get(task_name="auth.sessions_revoked")
    assert (message.payload["user_id"], message.payload["reason"]) == (str(user.pk), "deactivated")


def test_password_change_ends_other_sessions_but_not_the_fresh_pair(api_client, login, bearer_client):
    UserFactory(email="ada@example.com")
    old = login("ada@example.com")

    response = bearer_client(old["access"]).post(
        "/api/v1/auth/password/change",
        {"current_password": PASSWORD, "new_password": "an0ther-Long-passphrase"},
        format="json",
    )

    assert response.status_code == 200, response.content
    assert bearer_client(old["access"]).get(ME).status_code == 401
    assert bearer_client(response.json()["access"]).get(ME).status_code == 200


def test_an_admin_signs_a_user_out_everywhere(api_client, login, bearer_client, admin_user):
    user = UserFactory(email="eve@example.com")
    session = login("eve@example.com")
    admin_user.set_password(PASSWORD)
    admin_user.save()
    admin = bearer_client(login(admin_user.email)["access"])

    assert admin.post(f"/api/v1/auth/users/{user.pk}/sign-out").status_code == 204

    assert bearer_client(session["access"]).get(ME).status_code == 401
    refreshed = api_client.post("/api/v1/auth/token/refresh", {"refresh": session["refresh"]}, format="json")
    assert refreshed.status_code == 401
    # the account itself stays usable: a new sign-in works
    assert bearer_client(login("eve@example.com")["access"]).get(ME).status_code == 200


def test_erasure_revokes_the_access_tokens(login, bearer_client):
    user = UserFactory(email="zoe@example.com")
    session = login("zoe@example.com")

    services.user_erase(user_id=str(user.pk))

    assert bearer_client(session["access"]).get(ME).status_code == 401
