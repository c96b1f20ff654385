import pytest
from auth_factories import UserFactory  # noqa: I001 - this suite's factories module

from auth_service.accounts.models import User

pytestmark = pytest.mark.django_db

FORBIDDEN = {
    "type": "about:blank",
    "title": "Forbidden",
    "status": 403,
    "detail": "You do not have permission to perform this action.",
    "code": "permission_denied",
}


def roles_url(user_id) -> str:
    return f"/api/v1/auth/users/{user_id}/roles"


def test_a_customer_cannot_grant_itself_a_role(login, bearer_client):
    customer = UserFactory(email="quinn@example.com")
    me = bearer_client(login("quinn@example.com")["access"])

    response = me.post(roles_url(customer.pk), {"role": "admin"}, format="json")

    assert response.status_code == 403
    assert response.json() == FORBIDDEN
    customer.refresh_from_db()
    assert customer.roles == ["customer"]
    assert (customer.is_staff, customer.is_superuser) == (False, False)


@pytest.mark.parametrize("roles", [("merchant",), ("support",), ("customer", "merchant", "support")])
def test_only_admins_grant_roles(client_as, roles):
    target = UserFactory()

    response = client_as(str(UserFactory().pk), roles).post(roles_url(target.pk), {"role": "support"}, format="json")

    assert response.status_code == 403
    assert User.objects.get(pk=target.pk).roles == ["customer"]


def test_an_admin_grants_and_removes_roles(admin_user, login, bearer_client):
    target = UserFactory()
    admin = bearer_client(login(admin_user.email)["access"])

    granted = admin.post(roles_url(target.pk), {"role": "support"}, format="json")

    assert granted.status_code == 200
    assert granted.json() == {"id": str(target.pk), "roles": ["customer", "support"]}
    target.refresh_from_db()
    assert (target.is_staff, target.is_superuser) == (True, False)

    removed = admin.delete(f"{roles_url(target.pk)}/support")

    assert removed.status_code == 200
    assert removed.json() == {"id": str(target.pk), "roles": ["customer"]}
    target.refresh_from_db()
    assert (target.is_staff, target.is_superuser) == (False, False)


def test_granting_admin_makes_a_superuser_of_this_admin(admin_user, login, bearer_client):
    target = UserFactory()
    admin = bearer_client(login(admin_user.email)["access"])

    admin.post(roles_url(target.pk), {"role": "admin"}, format="json")

    target.refresh_from_db()
    assert target.role_list == ["customer", "admin"]
    assert (target.is_staff, target.is_superuser) == (True, True)


def test_role_input_is_validated(admin_user, login, bearer_client):
    target = UserFactory()
    admin = bearer_client(login(admin_user.email)["access"])

    bad_grant = admin.post(roles_url(target.pk), {"role": "wizard"}, format="json")
    bad_remove = admin.delete(f"{roles_url(target.pk)}/wizard")
    unknown_user = admin.post(roles_url("8d1e2a0c-0000-4000-8000-000000000000"), {"role": "support"}, format="json")
    malformed_user = admin.post(roles_url("../../etc"), {"role": "support"}, format="json")

    assert bad_grant.status_code == 400
    assert bad_grant.json()["errors"] == [{"field": "role", "reason": '"wizard" is not a valid choice.'}]
    assert bad_remove.status_code == 400
    assert bad_remove.json()["errors"] == [{"field": "role", "reason": '"wizard" is not a valid choice.'}]
    assert unknown_user.status_code == 404
    assert malformed_user.status_code == 404


def test_an_admin_cannot_remove_their_own_admin_role(admin_user, login, bearer_client):
    admin = bearer_client(login(admin_user.email)["access"])

    response = admin.delete(f"{roles_url(admin_user.pk)}/admin")

    assert response.status_code == 409
    assert response.json()["detail"] == "An admin cannot remove their own admin role; ask another admin."


def test_an_admin_deactivates_a_user_and_their_sessions_end(api_client, admin_user, login, bearer_client):
    target = UserFactory(email="rosa@example.com")
    target_pair = login("rosa@example.com")
    admin = bearer_client(login(admin_user.email)["access"])

    response = admin.post(f"/api/v1/auth/users/{target.pk}/deactivate")

    assert response.status_code == 200
    assert response.json()["is_active"] is False
    refreshed = api_client.post("/api/v1/auth/token/refresh", {"refresh": target_pair["refresh"]}, format="json")
    assert refreshed.status_code == 401


def test_support_may_look_a_user_up_but_not_deactivate(client_as):
    target = UserFactory(email="sam@example.com")
    support = client_as(str(UserFactory().pk), ("customer", "support"))

    looked_up = support.get(f"/api/v1/auth/users/{target.pk}")
    deactivate = support.post(f"/api/v1/auth/users/{target.pk}/deactivate")

    assert looked_up.status_code == 200
    assert looked_up.json()["email"] == "sam@example.com"
    assert deactivate.status_code == 403
    assert User.objects.get(pk=target.pk).is_active is True


def test_identity_headers_sent_by_a_client_are_not_trusted(api_client, login, bearer_client):
    """X-User-Id / X-User-Roles claim an identity; only a verified token establishes one."""
    victim = UserFactory(email="tia@example.com", roles=["customer", "admin"])
    attacker = UserFactory(email="uma@example.com")
    headers = {
        "HTTP_X_USER_ID": str(victim.pk),
        "HTTP_X_USER_ROLES": "admin",
        "HTTP_X_USER_EMAIL": victim.email,
    }

    anonymous = api_client.get("/api/v1/auth/me", **headers)
    escalate = api_client.post(roles_url(attacker.pk), {"role": "admin"}, format="json", **headers)
    as_attacker = bearer_client(login("uma@example.com")["access"])
    me = as_attacker.get("/api/v1/auth/me", **headers)
    grant = as_attacker.post(roles_url(attacker.pk), {"role": "admin"}, format="json", **headers)

    assert anonymous.status_code == 401
    assert escalate.status_code == 401
    assert me.status_code == 200
    assert me.json()["id"] == str(attacker.pk)
    assert grant.status_code == 403
    assert User.objects.get(pk=attacker.pk).roles == ["customer"]
