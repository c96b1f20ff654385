import pytest

from auth_service.accounts.models import User
from bazaar_common.outbox.models import OutboxMessage

pytestmark = pytest.mark.django_db

REGISTER = "/api/v1/auth/register"


def test_register_creates_a_customer_with_an_argon2_hash_and_announces_it(api_client):
    response = api_client.post(
        REGISTER,
        {"email": "  Ada.Lovelace@Example.COM ", "password": "analytical-engine-1843"},
        format="json",
    )

    assert response.status_code == 201
    body = response.json()
    user = User.objects.get()
    assert body == {
        "id": str(user.pk),
        "email": "ada.lovelace@example.com",
        "roles": ["customer"],
        "is_active": True,
        "date_joined": user.date_joined.isoformat().replace("+00:00", "Z"),
        "last_login": None,
    }
    assert user.password.startswith("argon2$argon2id$")
    message = OutboxMessage.objects.get()
    assert (message.task_name, message.queue) == ("profiles.user_registered", "profiles")
    assert message.payload == {"v": 2, "user_id": str(user.pk), "email": "ada.lovelace@example.com"}


def test_register_refuses_an_email_that_differs_only_in_case(api_client):
    api_client.post(REGISTER, {"email": "bob@example.com", "password": "a-long-passphrase-1"}, format="json")

    response = api_client.post(REGISTER, {"email": "BOB@example.com", "password": "a-long-passphrase-1"}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == [{"field": "email", "reason": "An account with this email already exists."}]
    assert User.objects.count() == 1
    assert OutboxMessage.objects.count() == 1


@pytest.mark.parametrize(
    ("password", "reasons"),
    [
        (
            "xq7!zr",
            ["This password is too short. It must contain at least 8 characters."],
        ),
        ("password", ["This password is too common."]),
        ("83749261530", ["This password is entirely numeric."]),
        ("carol@example.com", ["The password is too similar to the email address."]),
    ],
)
def test_register_rejects_weak_passwords_with_the_reasons(api_client, password, reasons):
    response = api_client.post(REGISTER, {"email": "carol@example.com", "password": password}, format="json")

    assert response.status_code == 400
    body = response.json()
    assert body["status"] == 400
    assert body["errors"] == [{"field": "password", "reason": reason} for reason in reasons]
    assert not User.objects.exists()
    assert not OutboxMessage.objects.exists()


def test_register_validates_the_fields(api_client):
    response = api_client.post(REGISTER, {"email": "not-an-email"}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"field": "email", "reason": "Enter a valid email address."},
        {"field": "password", "reason": "This field is required."},
    ]


def test_register_ignores_a_bearer_header(api_client):
    api_client.credentials(HTTP_AUTHORIZATION="Bearer garbage")

    response = api_client.post(
        REGISTER, {"email": "dave@example.com", "password": "a-long-passphrase-1"}, format="json"
    )

    assert response.status_code == 201
