import pytest
from auth_factories import PASSWORD, UserFactory  # noqa: I001 - this suite's factories module
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from auth_service.accounts import tasks
from auth_service.accounts.models import User
from bazaar_common.auth.tokens import verify_access_token
from bazaar_common.outbox.models import ProcessedMessage

pytestmark = pytest.mark.django_db

SERVICE_TOKEN = "/internal/v1/auth/service-token"
ADMIN_LOGIN = "/internal/v1/auth/admin-login"


def test_a_service_gets_a_short_lived_service_token(api_client, settings):
    settings.SERVICE_CREDENTIALS = "orders:orders-secret, catalog:catalog-secret"

    response = api_client.post(
        SERVICE_TOKEN, {"client_id": "catalog", "client_secret": "catalog-secret"}, format="json"
    )

    assert response.status_code == 200
    assert response.json()["expires_in"] == 300
    principal = verify_access_token(response.json()["access"])
    assert (principal.id, principal.roles, principal.is_service) == (
        "service:catalog",
        frozenset({"service"}),
        True,
    )


def test_during_a_rotation_both_secrets_of_a_service_are_accepted(api_client, settings):
    """Rotation without downtime: auth lists catalog twice, pods with either secret get tokens."""
    settings.SERVICE_CREDENTIALS = "catalog:new-secret,orders:orders-secret,catalog:old-secret"

    statuses = [
        api_client.post(SERVICE_TOKEN, {"client_id": "catalog", "client_secret": secret}, format="json").status_code
        for secret in ("new-secret", "old-secret", "orders-secret")
    ]

    assert statuses == [200, 200, 401]


@pytest.mark.parametrize(
    ("client_id", "secret"),
    [("orders", "catalog-secret"), ("unknown", "x"), ("orders", ""), ("", "orders-secret")],
)
def test_wrong_service_credentials_are_401(api_client, settings, client_id, secret):
    settings.SERVICE_CREDENTIALS = "orders:orders-secret,catalog:catalog-secret"

    response = api_client.post(SERVICE_TOKEN, {"client_id": client_id, "client_secret": secret}, format="json")

    assert response.status_code in (400, 401)
    if client_id and secret:
        assert response.status_code == 401
        assert response.json()["detail"] == "Unknown service credentials."


def test_internal_endpoints_refuse_user_tokens_and_anonymous_callers(api_client, client_as):
    user = UserFactory()
    admin = client_as(str(UserFactory().pk), ("customer", "admin"))
    paths = [f"/internal/v1/auth/users/{user.pk}"]

    for path in paths:
        assert api_client.get(path).status_code == 401
        assert admin.get(path).status_code == 403
    assert admin.post(ADMIN_LOGIN, {"email": user.email, "password": PASSWORD}, format="json").status_code == 403
    assert (
        admin.post(f"/internal/v1/auth/users/{user.pk}/verify-password", {"password": PASSWORD}, format="json")
    ).status_code == 403


def test_admin_login_returns_the_identity(service_client_api):
    user = UserFactory(email="eve@example.com", roles=["customer", "support"])

    response = service_client_api.post(ADMIN_LOGIN, {"email": "Eve@Example.com", "password": PASSWORD}, format="json")

    assert response.status_code == 200
    assert response.json() == {
        "user_id": str(user.pk),
        "email": "eve@example.com",
        "roles": ["customer", "support"],
    }


def test_admin_login_with_wrong_credentials_is_401_and_is_throttled_per_person(service_client_api, settings):
    settings.LOGIN_MAX_FAILURES_PER_ACCOUNT = 2
    settings.LOGIN_MAX_FAILURES_PER_ADDRESS = 3
    UserFactory(email="fay@example.com")

    first = service_client_api.post(
        ADMIN_LOGIN, {"email": "fay@example.com", "password": "nope", "client_ip": "192.0.2.1"}, format="json"
    )
    service_client_api.post(
        ADMIN_LOGIN, {"email": "fay@example.com", "password": "nope", "client_ip": "192.0.2.1"}, format="json"
    )
    blocked = service_client_api.post(
        ADMIN_LOGIN,
        {"email": "fay@example.com", "password": PASSWORD, "client_ip": "192.0.2.2"},
        format="json",
    )

    assert first.status_code == 401
    assert blocked.status_code == 429
    assert int(blocked["Retry-After"]) > 0


def test_internal_user_detail(service_client_api):
    user = UserFactory(email="gus@example.com")

    found = service_client_api.get(f"/internal/v1/auth/users/{user.pk}")
    missing = service_client_api.get("/internal/v1/auth/users/00000000-0000-4000-8000-000000000000")
    malformed = service_client_api.get("/internal/v1/auth/users/1%20OR%201=1")

    assert found.status_code == 200
    assert found.json() == {
        "id": str(user.pk),
        "email": "gus@example.com",
        "roles": ["customer"],
        "is_active": True,
        "date_joined": user.date_joined.isoformat().replace("+00:00", "Z"),
        "last_login": None,
    }
    assert (missing.status_code, malformed.status_code) == (404, 404)


def test_verify_password(service_client_api):
    user = UserFactory()
    url = f"/internal/v1/auth/users/{user.pk}/verify-password"

    right = service_client_api.post(url, {"password": PASSWORD}, format="json")
    wrong = service_client_api.post(url, {"password": "not-it"}, format="json")

    assert right.status_code == 204
    assert wrong.status_code == 403
    assert wrong.json()["detail"] == "The password is not correct."


def test_user_erased_consumer_forgets_the_identity_once(api_client, login):
    user = UserFactory(email="hal@example.com", roles=["customer", "merchant"])
    pair = login("hal@example.com")
    payload = {"user_id": str(user.pk)}

    tasks.user_erased.apply(kwargs={"message_id": "6a0c7f1e-5b8e-4d7e-9a6f-0f1b2c3d4e5f", "payload": payload})
    tasks.user_erased.apply(kwargs={"message_id": "6a0c7f1e-5b8e-4d7e-9a6f-0f1b2c3d4e5f", "payload": payload})

    erased = User.objects.get(pk=user.pk)
    assert erased.email == f"erased-{user.pk}@erased.invalid"
    assert (erased.is_active, erased.roles, erased.has_usable_password()) == (False, [], False)
    assert ProcessedMessage.objects.filter(task_name="auth.user_erased").count() == 1
    outstanding = OutstandingToken.objects.filter(user=erased)
    assert BlacklistedToken.objects.filter(token__in=outstanding).count() == outstanding.count() == 1
    assert set(outstanding.values_list("token", flat=True)) == {""}
    assert api_client.post("/api/v1/auth/token/refresh", {"refresh": pair["refresh"]}, format="json").status_code == 401
    assert (
        api_client.post("/api/v1/auth/token", {"email": "hal@example.com", "password": PASSWORD}, format="json")
    ).status_code == 401
