"""Revocation at once: every session of a user ends on its next request, wherever it is sent."""

from __future__ import annotations

import re

import pytest
from auth_factories import PASSWORD, UserFactory  # noqa: I001 - this suite's factories module
from django.core import mail

from auth_service.accounts import services, tasks
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


def test_a_password_reset_revokes_the_access_tokens_of_every_session(api_client, login, bearer_client, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    user = UserFactory(email="mia@example.com")
    session = login("mia@example.com")
    assert bearer_client(session["access"]).get(ME).status_code == 200

    assert api_client.post("/api/v1/auth/password/reset", {"email": user.email}, format="json").status_code == 202
    message = OutboxMessage.objects.get(task_name="auth.password_reset_mail_send")
    tasks.password_reset_mail_send.apply(kwargs={"message_id": str(message.id), "payload": message.payload})
    uid, token = re.search(r"uid=([^&\s]+)&token=([^\s]+)", mail.outbox[0].body).groups()
    confirmed = api_client.post(
        "/api/v1/auth/password/reset/confirm",
        {"uid": uid, "token": token, "new_password": "a-brand-new-passphrase-7"},
        format="json",
    )

    assert confirmed.status_code == 204
    refused = bearer_client(session["access"]).get(ME)
    assert refused.status_code == 401
    assert refused.json()["detail"] == "Token has been revoked; sign in again."
    reasons = [m.payload["reason"] for m in OutboxMessage.objects.filter(task_name="auth.sessions_revoked")]
    assert reasons == ["password_reset"]
