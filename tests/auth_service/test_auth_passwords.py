import re

import pytest
from auth_factories import PASSWORD, UserFactory  # noqa: I001 - this suite's factories module
from django.core import mail

from auth_service.accounts import tasks
from auth_service.accounts.models import User
from bazaar_common.outbox.models import OutboxMessage

pytestmark = pytest.mark.django_db

CHANGE = "/api/v1/auth/password/change"
RESET = "/api/v1/auth/password/reset"
CONFIRM = "/api/v1/auth/password/reset/confirm"
NEW_PASSWORD = "a-brand-new-passphrase-7"


def _refresh(api_client, refresh):
    return api_client.post("/api/v1/auth/token/refresh", {"refresh": refresh}, format="json")


def test_password_change_revokes_every_refresh_token_and_returns_a_fresh_pair(api_client, login, bearer_client):
    UserFactory(email="vera@example.com")
    other_device = login("vera@example.com")
    pair = login("vera@example.com")

    response = bearer_client(pair["access"]).post(
        CHANGE, {"current_password": PASSWORD, "new_password": NEW_PASSWORD}, format="json"
    )

    assert response.status_code == 200
    fresh = response.json()
    assert _refresh(api_client, other_device["refresh"]).status_code == 401
    assert _refresh(api_client, pair["refresh"]).status_code == 401
    assert _refresh(api_client, fresh["refresh"]).status_code == 200
    login("vera@example.com", NEW_PASSWORD)
    assert User.objects.get(email="vera@example.com").password.startswith("argon2$")


def test_password_change_needs_the_current_password_and_a_strong_new_one(login, bearer_client):
    UserFactory(email="walt@example.com")
    client = bearer_client(login("walt@example.com")["access"])

    wrong = client.post(CHANGE, {"current_password": "nope-nope-nope", "new_password": NEW_PASSWORD}, format="json")
    weak = client.post(CHANGE, {"current_password": PASSWORD, "new_password": "12345678"}, format="json")

    assert wrong.status_code == 403
    assert wrong.json()["detail"] == "The password is not correct."
    assert weak.status_code == 400
    assert weak.json()["errors"] == [
        {"field": "new_password", "reason": "This password is too common."},
        {"field": "new_password", "reason": "This password is entirely numeric."},
    ]
    login("walt@example.com", PASSWORD)


def _mailed_link(user) -> tuple[str, str]:
    message = OutboxMessage.objects.get(task_name="auth.password_reset_mail_send")
    assert message.payload == {"v": 1, "user_id": str(user.pk)}
    # the auth worker's consumer, run in-process (the broker is not what is under test here)
    tasks.password_reset_mail_send.apply(kwargs={"message_id": str(message.id), "payload": message.payload})
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == [user.email]
    match = re.search(r"uid=([^&\s]+)&token=([^\s]+)", mail.outbox[0].body)
    return match.group(1), match.group(2)


def test_password_reset_round_trip(api_client, login, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    user = UserFactory(email="xena@example.com")
    session = login("xena@example.com")

    requested = api_client.post(RESET, {"email": "Xena@Example.com"}, format="json")

    assert requested.status_code == 202
    assert requested.json() == {"detail": "If an account exists for this email, a reset link is on its way."}
    uid, token = _mailed_link(user)
    confirmed = api_client.post(CONFIRM, {"uid": uid, "token": token, "new_password": NEW_PASSWORD}, format="json")
    assert confirmed.status_code == 204
    login("xena@example.com", NEW_PASSWORD)
    assert _refresh(api_client, session["refresh"]).status_code == 401
    # the link works once
    again = api_client.post(CONFIRM, {"uid": uid, "token": token, "new_password": "yet-another-pass-9"}, format="json")
    assert again.status_code == 400
    assert again.json()["errors"] == [{"field": "token", "reason": "The reset link is invalid or has expired."}]


def test_password_reset_for_an_unknown_email_answers_the_same_and_sends_nothing(api_client, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"

    response = api_client.post(RESET, {"email": "nobody@example.com"}, format="json")

    assert response.status_code == 202
    assert response.json() == {"detail": "If an account exists for this email, a reset link is on its way."}
    assert not OutboxMessage.objects.exists()
    assert mail.outbox == []


@pytest.mark.parametrize(("uid", "token"), [("bm9wZQ", "abc-def"), ("!!!", "x"), ("", "")])
def test_password_reset_confirm_with_a_bad_link(api_client, uid, token):
    response = api_client.post(CONFIRM, {"uid": uid, "token": token, "new_password": NEW_PASSWORD}, format="json")

    assert response.status_code == 400
