"""Staff sign in to the auth service's Django admin with their Bazaar account (the common backend).

The same backend serves every service's admin; here it checks credentials in-process (the auth
service holds them) and, in the last tests, over real HTTP to a live auth server, as the other
services do.
"""

import pytest
from auth_factories import PASSWORD, UserFactory  # noqa: I001 - this suite's factories module
from django.contrib.auth.models import Group
from django.test import Client

from auth_service.accounts.models import User

pytestmark = pytest.mark.django_db

LOGIN = "/admin/login/?next=/admin/"


def _sign_in(client: Client, email: str, password: str = PASSWORD, **extra):
    return client.post(LOGIN, {"username": email, "password": password}, **extra)


def _signed_in_user_id(client: Client) -> str | None:
    return client.session.get("_auth_user_id")


def _group_names(user: User) -> set[str]:
    return set(user.groups.values_list("name", flat=True))


def test_an_admin_signs_in_as_superuser_and_manages_users():
    admin = UserFactory(email="ada@bazaar.test", roles=["customer", "admin"])
    client = Client()

    response = _sign_in(client, "ADA@bazaar.test")

    assert response.status_code == 302
    assert response["Location"] == "/admin/"
    assert _signed_in_user_id(client) == str(admin.pk)
    admin.refresh_from_db()
    assert (admin.is_staff, admin.is_superuser) == (True, True)
    assert _group_names(admin) == {"admin"}
    assert client.get("/admin/accounts/user/").status_code == 200
    assert client.get("/admin/").status_code == 200


def test_support_signs_in_and_may_only_look_at_accounts():
    support = UserFactory(email="sue@bazaar.test", roles=["customer", "support"])
    customer = UserFactory(email="cat@example.com")
    client = Client()

    response = _sign_in(client, "sue@bazaar.test")

    assert response.status_code == 302
    support.refresh_from_db()
    assert (support.is_staff, support.is_superuser) == (True, False)
    assert _group_names(support) == {"support"}
    assert client.get("/admin/accounts/user/").status_code == 200
    detail = client.get(f"/admin/accounts/user/{customer.pk}/change/")
    assert detail.status_code == 200
    assert b"role_set" not in detail.content  # view only, no role editing
    change = client.post(f"/admin/accounts/user/{customer.pk}/change/", {"role_set": ["customer", "admin"]})
    assert change.status_code == 403
    assert User.objects.get(pk=customer.pk).roles == ["customer"]


def test_a_merchant_enters_the_admin_but_sees_nothing_of_auth():
    merchant = UserFactory(email="max@bazaar.test", roles=["customer", "merchant"])
    client = Client()

    response = _sign_in(client, "max@bazaar.test")

    assert response.status_code == 302
    merchant.refresh_from_db()
    assert (merchant.is_staff, merchant.is_superuser) == (True, False)
    assert _group_names(merchant) == {"merchant"}
    assert client.get("/admin/accounts/user/").status_code == 403


def test_a_customer_cannot_enter_the_admin():
    UserFactory(email="cora@example.com")
    client = Client()

    response = _sign_in(client, "cora@example.com")

    assert response.status_code == 200
    assert b"Please enter the correct email address and password for a staff account" in response.content
    assert _signed_in_user_id(client) is None
    assert client.get("/admin/").status_code == 302


def test_a_wrong_password_does_not_enter():
    UserFactory(email="dan@bazaar.test", roles=["customer", "admin"])
    client = Client()

    response = _sign_in(client, "dan@bazaar.test", "not-the-password")

    assert response.status_code == 200
    assert _signed_in_user_id(client) is None


def test_a_removed_role_removes_the_access(api_client, login, bearer_client):
    staff = UserFactory(email="ed@bazaar.test", roles=["customer", "support"])
    admin = UserFactory(email="root@bazaar.test", roles=["customer", "admin"], is_staff=True, is_superuser=True)
    client = Client()
    _sign_in(client, "ed@bazaar.test")
    assert client.get("/admin/accounts/user/").status_code == 200

    bearer_client(login(admin.email)["access"]).delete(f"/api/v1/auth/users/{staff.pk}/roles/support")

    # the open session loses the admin at once here (auth owns the account) ...
    assert client.get("/admin/accounts/user/").status_code == 302
    # ... and the next sign-in is refused, with the role group taken away
    fresh = Client()
    assert _sign_in(fresh, "ed@bazaar.test").status_code == 200
    assert _signed_in_user_id(fresh) is None
    assert _group_names(User.objects.get(pk=staff.pk)) == set()


def test_an_admin_grants_roles_in_the_auth_admin():
    UserFactory(email="fin@bazaar.test", roles=["customer", "admin"])
    target = UserFactory(email="gil@example.com")
    client = Client()
    _sign_in(client, "fin@bazaar.test")

    response = client.post(f"/admin/accounts/user/{target.pk}/change/", {"role_set": ["customer", "merchant"]})

    assert response.status_code == 302
    target.refresh_from_db()
    assert target.role_list == ["customer", "merchant"]
    assert (target.is_staff, target.is_superuser) == (True, False)


def test_admin_sign_in_is_throttled_like_the_api_login(settings):
    settings.LOGIN_MAX_FAILURES_PER_ACCOUNT = 2
    UserFactory(email="hugo@bazaar.test", roles=["customer", "admin"])
    client = Client()
    for _ in range(2):
        _sign_in(client, "hugo@bazaar.test", "wrong-wrong-wrong")

    response = _sign_in(client, "hugo@bazaar.test")

    assert response.status_code == 200
    assert _signed_in_user_id(client) is None


def test_groups_not_named_after_roles_are_left_alone():
    staff = UserFactory(email="ida@bazaar.test", roles=["customer", "support"])
    staff.groups.add(Group.objects.create(name="night-shift"), Group.objects.get_or_create(name="merchant")[0])

    _sign_in(Client(), "ida@bazaar.test")

    assert _group_names(User.objects.get(pk=staff.pk)) == {"support", "night-shift"}


@pytest.fixture
def auth_over_http(live_server, settings, monkeypatch):
    """This auth service on a real socket, registered in discovery, and the backend in the mode every
    other service uses: credentials checked through POST /internal/v1/auth/admin-login with a
    service token obtained from /internal/v1/auth/service-token."""
    from django.db import connections

    from bazaar_common.auth.service_tokens import forget_service_token
    from bazaar_common.discovery import Instance, get_registry

    # The live server's request threads must not keep connections, or the test database cannot be
    # dropped at the end of the session.
    monkeypatch.setitem(connections.settings["default"], "CONN_MAX_AGE", 0)
    settings.BAZAAR_ADMIN_CREDENTIALS_CHECK = None
    settings.SERVICE_CREDENTIALS = "catalog:catalog-secret"
    monkeypatch.setenv("SERVICE_CLIENT_ID", "catalog")
    monkeypatch.setenv("SERVICE_CLIENT_SECRET", "catalog-secret")
    registry = get_registry()
    instance = Instance(service="auth", instance_id="auth-live-test", base_url=live_server.url)
    registry.register(instance)
    registry.invalidate("auth")
    forget_service_token()
    yield
    registry.deregister("auth", "auth-live-test")
    forget_service_token()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("roles", "enters", "superuser", "groups"),
    [
        (["customer", "admin"], True, True, {"admin"}),
        (["customer", "support"], True, False, {"support"}),
        (["customer", "merchant"], True, False, {"merchant"}),
        (["customer"], False, False, set()),
    ],
)
def test_admin_sign_in_over_http_for_each_role(auth_over_http, roles, enters, superuser, groups):
    user = UserFactory(email="remote@bazaar.test", roles=roles)
    client = Client()

    response = _sign_in(client, "remote@bazaar.test")

    assert response.status_code == (302 if enters else 200)
    assert _signed_in_user_id(client) == (str(user.pk) if enters else None)
    user.refresh_from_db()
    assert (user.is_staff, user.is_superuser) == (enters, superuser)
    assert _group_names(user) == groups


@pytest.mark.django_db(transaction=True)
def test_admin_sign_in_over_http_with_a_wrong_password(auth_over_http):
    UserFactory(email="remote2@bazaar.test", roles=["customer", "admin"])
    client = Client()

    assert _sign_in(client, "remote2@bazaar.test", "wrong-password-here").status_code == 200
    assert _signed_in_user_id(client) is None


@pytest.mark.django_db(transaction=True)
def test_admin_sign_in_over_http_is_refused_while_auth_is_unreachable(auth_over_http):
    from bazaar_common.discovery import get_registry

    UserFactory(email="remote3@bazaar.test", roles=["customer", "admin"])
    get_registry().deregister("auth", "auth-live-test")
    client = Client()

    response = _sign_in(client, "remote3@bazaar.test")

    assert response.status_code == 200
    assert _signed_in_user_id(client) is None
