import json
import time

import jwt
import pytest
from auth_factories import PASSWORD, UserFactory  # noqa: I001 - this suite's factories module

from auth_service.accounts.keys import key_ring
from bazaar_common.auth.tokens import InvalidToken, verify_access_token

pytestmark = pytest.mark.django_db

TOKEN = "/api/v1/auth/token"
REFRESH = "/api/v1/auth/token/refresh"
LOGOUT = "/api/v1/auth/logout"
ME = "/api/v1/auth/me"
INVALID_REFRESH = {
    "type": "about:blank",
    "title": "Not authenticated",
    "status": 401,
    "detail": "The refresh token is invalid, expired or revoked.",
    "code": "authentication_failed",
}


def _refresh(api_client, refresh):
    return api_client.post(REFRESH, {"refresh": refresh}, format="json")


def test_login_returns_an_rs256_pair_with_the_platform_claims(api_client, settings):
    user = UserFactory(email="erin@example.com", roles=["customer", "merchant"])

    response = api_client.post(TOKEN, {"email": "ERIN@example.com", "password": PASSWORD}, format="json")

    assert response.status_code == 200
    pair = response.json()
    assert set(pair) == {"access", "refresh"}
    header = jwt.get_unverified_header(pair["access"])
    assert header == {"alg": "RS256", "typ": "JWT", "kid": key_ring().current_kid}
    claims = jwt.decode(pair["access"], options={"verify_signature": False})
    assert set(claims) == {"sub", "roles", "email", "iss", "aud", "exp", "iat", "iat_ms", "jti", "token_type"}
    assert claims["sub"] == str(user.pk)
    assert claims["roles"] == ["customer", "merchant"]
    assert claims["email"] == "erin@example.com"
    assert (claims["iss"], claims["aud"], claims["token_type"]) == ("bazaar-auth", "bazaar", "access")
    assert claims["exp"] - claims["iat"] == 300
    refresh_claims = jwt.decode(pair["refresh"], options={"verify_signature": False})
    assert refresh_claims["token_type"] == "refresh"
    assert refresh_claims["exp"] - refresh_claims["iat"] == 24 * 3600
    principal = verify_access_token(pair["access"])
    assert (principal.id, principal.roles) == (str(user.pk), frozenset({"customer", "merchant"}))
    user.refresh_from_db()
    assert user.last_login is not None


@pytest.mark.parametrize(
    ("email", "password"),
    [("frank@example.com", "wrong-password-1"), ("nobody@example.com", PASSWORD)],
)
def test_login_failures_look_the_same_whether_or_not_the_email_exists(api_client, email, password):
    UserFactory(email="frank@example.com")

    response = api_client.post(TOKEN, {"email": email, "password": password}, format="json")

    assert response.status_code == 401
    assert response.json() == {
        "type": "about:blank",
        "title": "Not authenticated",
        "status": 401,
        "detail": "No active account found with the given credentials.",
        "code": "authentication_failed",
    }


def test_me_shows_the_account_of_the_token(api_client, login, bearer_client):
    user = UserFactory(email="gina@example.com")
    pair = login("gina@example.com")

    response = bearer_client(pair["access"]).get(ME)

    assert response.status_code == 200
    assert response.json()["id"] == str(user.pk)
    assert response.json()["email"] == "gina@example.com"
    assert api_client.get(ME).status_code == 401


def test_refresh_rotates_and_the_old_refresh_token_is_spent(api_client, login):
    UserFactory(email="hank@example.com")
    first = login("hank@example.com")

    rotated = _refresh(api_client, first["refresh"])

    assert rotated.status_code == 200
    second = rotated.json()
    assert second["refresh"] != first["refresh"]
    assert verify_access_token(second["access"]).claims["email"] == "hank@example.com"
    assert _refresh(api_client, second["refresh"]).status_code == 200


def test_reusing_a_rotated_refresh_token_revokes_every_session_of_the_user(api_client, login):
    UserFactory(email="ivy@example.com")
    other_device = login("ivy@example.com")
    stolen = login("ivy@example.com")
    legit = _refresh(api_client, stolen["refresh"]).json()

    # when the attacker replays the already rotated token
    replay = _refresh(api_client, stolen["refresh"])

    # then it is refused and every refresh token of the user is dead, on every device
    assert replay.status_code == 401
    assert replay.json() == INVALID_REFRESH
    assert _refresh(api_client, legit["refresh"]).status_code == 401
    assert _refresh(api_client, other_device["refresh"]).status_code == 401
    # another user is untouched
    UserFactory(email="jack@example.com")
    assert _refresh(api_client, login("jack@example.com")["refresh"]).status_code == 200


def test_logout_spends_the_refresh_token_and_presenting_it_again_revokes_the_family(api_client, login):
    UserFactory(email="kate@example.com")
    other_device = login("kate@example.com")
    pair = login("kate@example.com")

    assert api_client.post(LOGOUT, {"refresh": pair["refresh"]}, format="json").status_code == 204
    assert _refresh(api_client, pair["refresh"]).status_code == 401
    assert _refresh(api_client, other_device["refresh"]).status_code == 401


def test_an_access_token_is_not_a_refresh_token(api_client, login):
    UserFactory(email="liam@example.com")
    pair = login("liam@example.com")

    assert _refresh(api_client, pair["access"]).json() == INVALID_REFRESH


def test_refresh_with_garbage_and_with_missing_field(api_client):
    assert _refresh(api_client, "not.a.token").status_code == 401
    response = api_client.post(REFRESH, {}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"] == [{"field": "refresh", "reason": "This field is required."}]


def test_refresh_picks_up_role_changes(api_client, login, admin_user, bearer_client):
    user = UserFactory(email="mia@example.com")
    pair = login("mia@example.com")
    admin_pair = login(admin_user.email)
    bearer_client(admin_pair["access"]).post(f"/api/v1/auth/users/{user.pk}/roles", {"role": "support"}, format="json")

    refreshed = _refresh(api_client, pair["refresh"]).json()

    assert verify_access_token(refreshed["access"]).roles == frozenset({"customer", "support"})


def test_deactivated_user_access_window_and_refresh_refused_at_once(api_client, login, bearer_client):
    """Access tokens are verified locally by every service, without asking auth: a deactivated
    user's access token keeps working elsewhere until it expires (at most ACCESS_TOKEN_LIFETIME,
    5 minutes by default). Refresh, sign-in and this service's own endpoints refuse at once."""
    UserFactory(email="noah@example.com")
    pair = login("noah@example.com")
    me = bearer_client(pair["access"])

    assert me.post("/api/v1/auth/me/deactivate", {"password": PASSWORD}, format="json").status_code == 204

    # still verifies for other services during its remaining lifetime
    claims = verify_access_token(pair["access"]).claims
    assert 0 < claims["exp"] - time.time() <= 300
    # but is refused at once wherever the account is looked at
    assert me.get(ME).status_code == 401
    assert _refresh(api_client, pair["refresh"]).status_code == 401
    response = api_client.post(TOKEN, {"email": "noah@example.com", "password": PASSWORD}, format="json")
    assert response.status_code == 401
    assert response.json()["detail"] == "No active account found with the given credentials."


def test_self_deactivation_needs_the_password(login, bearer_client):
    UserFactory(email="olga@example.com")
    me = bearer_client(login("olga@example.com")["access"])

    response = me.post("/api/v1/auth/me/deactivate", {"password": "not-my-password"}, format="json")

    assert response.status_code == 403
    assert response.json()["detail"] == "The password is not correct."
    assert me.get(ME).status_code == 200


def test_an_expired_access_token_is_refused(login, bearer_client, settings):
    from datetime import timedelta

    settings.SIMPLE_JWT = {**settings.SIMPLE_JWT, "ACCESS_TOKEN_LIFETIME": timedelta(seconds=-120)}
    UserFactory(email="pia@example.com")
    pair = login("pia@example.com")

    response = bearer_client(pair["access"]).get(ME)

    assert response.status_code == 401
    assert response.json()["detail"] == "Token has expired."
    with pytest.raises(InvalidToken, match="expired"):
        verify_access_token(pair["access"])


def test_a_refresh_token_is_refused_where_an_access_token_is_expected(login, bearer_client):
    UserFactory(email="quin@example.com")
    pair = login("quin@example.com")

    response = bearer_client(pair["refresh"]).get(ME)

    assert response.status_code == 401
    assert response.json()["detail"] == "Not an access token."
    with pytest.raises(InvalidToken, match="Not an access token"):
        verify_access_token(pair["refresh"])


def test_the_openapi_schema_describes_the_auth_api(api_client):
    response = api_client.get("/schema/openapi.json", HTTP_ACCEPT="application/vnd.oai.openapi+json")

    assert response.status_code == 200
    schema = json.loads(response.content)
    assert {"/api/v1/auth/register", "/api/v1/auth/token", "/api/v1/auth/token/refresh"} <= set(schema["paths"])
    assert schema["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"


def test_expired_refresh_tokens_are_flushed_by_the_periodic_task(login):
    from datetime import timedelta

    from django.utils import timezone
    from rest_framework_simplejwt.token_blacklist.models import OutstandingToken

    from auth_service.accounts import tasks

    UserFactory(email="rex@example.com")
    login("rex@example.com")
    login("rex@example.com")
    OutstandingToken.objects.filter(pk=OutstandingToken.objects.order_by("pk").first().pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )

    assert tasks.flush_expired_tokens.apply().get() == 1
    assert OutstandingToken.objects.count() == 1
