"""auth's internal endpoints agree with their contracts (bazaar_common.contracts.http) and with the
requests their callers build: the service-token exchange (every service), the admin sign-in (every
service's admin), an account and the password check (profiles)."""

from __future__ import annotations

import pytest
from auth_factories import PASSWORD, UserFactory  # noqa: I001 - this suite's factories module

from bazaar_common.contracts import http as internal
from bazaar_devtools.contract_checks import answer_is_the_contract, contract_paths, internal_routes

pytestmark = pytest.mark.django_db


def test_every_internal_route_of_auth_has_a_contract():
    assert internal_routes() == contract_paths("auth")


def test_the_service_token_request_a_service_builds_gets_a_token_of_the_contract(api_client, settings):
    settings.SERVICE_CREDENTIALS = "catalog:catalog-secret"
    request = internal.ServiceTokenRequest(client_id="catalog", client_secret="catalog-secret")

    response = api_client.post(internal.SERVICE_TOKEN.path, request.to_json(), format="json")

    token = answer_is_the_contract(internal.SERVICE_TOKEN, response)
    assert token == internal.ServiceToken(access=response.json()["access"], expires_in=300)


def test_the_admin_sign_in_request_gets_the_identity_of_the_contract(service_client_api):
    user = UserFactory(email="ida@example.com", roles=["customer", "merchant"])
    request = internal.AdminLoginRequest.parse({"email": "ida@example.com", "password": PASSWORD, "client_ip": "::1"})

    response = service_client_api.post(internal.ADMIN_LOGIN.path, request.to_json(), format="json")

    assert answer_is_the_contract(internal.ADMIN_LOGIN, response) == internal.StaffIdentityAnswer(
        user_id=user.pk, email="ida@example.com", roles=["customer", "merchant"]
    )


def test_an_account_answer_is_the_contract(service_client_api):
    user = UserFactory(email="jo@example.com")

    response = service_client_api.get(internal.AUTH_ACCOUNT.url(user_id=user.pk))

    account = answer_is_the_contract(internal.AUTH_ACCOUNT, response)
    assert account == internal.Account(
        id=user.pk,
        email="jo@example.com",
        roles=["customer"],
        is_active=True,
        date_joined=user.date_joined,
        last_login=None,
    )


def test_the_password_check_request_is_answered_as_the_contract_says(service_client_api):
    user = UserFactory()
    url = internal.PASSWORD_CHECK.url(user_id=user.pk)

    right = service_client_api.post(url, internal.PasswordCheckRequest(password=PASSWORD).to_json(), format="json")
    wrong = service_client_api.post(url, internal.PasswordCheckRequest(password="nope").to_json(), format="json")

    assert answer_is_the_contract(internal.PASSWORD_CHECK, right) is None
    assert wrong.status_code == 403


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({"client_id": "catalog"}, [{"field": "client_secret", "reason": "This field is required."}]),
        (
            {"client_id": "catalog", "client_secret": "s", "scope": "all"},
            [{"field": "scope", "reason": "Unknown field."}],
        ),
        (
            {"client_id": 7, "client_secret": "s"},
            [{"field": "client_id", "reason": "Input should be a valid string"}],
        ),
    ],
)
def test_a_request_body_outside_the_contract_is_a_400_naming_the_field(api_client, body, errors):
    response = api_client.post(internal.SERVICE_TOKEN.path, body, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == errors
