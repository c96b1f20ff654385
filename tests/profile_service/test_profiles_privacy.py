"""Privacy: the export gathers from auth and orders (fakes here, real ones in e2e); erasure."""

from __future__ import annotations

import json
import uuid

import pytest
import redis
from factories import AddressFactory, ProfileFactory
from fakes import (
    CORRECT_PASSWORD,
    FAKE_SERVICE_TOKEN,
    FakeService,
    FakeServices,
    account,
    make_fake_auth,
    make_fake_orders,
    order_document,
)

from bazaar_common.contracts import http as internal
from bazaar_common.outbox.models import OutboxMessage
from bazaar_common.outbox.services import publisher
from profile_service.profiles.models import Address, ErasedUser, Profile
from profile_service.profiles.tasks import user_registered

ME = "/api/v1/profiles/me"
EXPORT = "/api/v1/profiles/me/export"
pytestmark = pytest.mark.django_db


def _account(user_id: str) -> internal.Account:
    return account(user_id, email="jane@example.com")


def _order(user_id: str) -> internal.OrderDocument:
    return order_document(user_id)


@pytest.fixture
def jane(user_id):
    profile = ProfileFactory(user_id=uuid.UUID(user_id), display_name="Jane", phone="+4930901820")
    address = AddressFactory(profile=profile, is_default_shipping=True, is_default_billing=True)
    return profile, address


@pytest.fixture
def auth(fake_services: FakeServices, user_id):
    return fake_services.serve(make_fake_auth({user_id: _account(user_id)}))


@pytest.fixture
def orders(fake_services: FakeServices, user_id):
    return fake_services.serve(make_fake_orders({user_id: [_order(user_id)]}))


def _assert_unavailable(response, service: str) -> None:
    """503 problem with Retry-After, naming the service (exact wording belongs to the client)."""
    assert response.status_code == 503, response.content
    assert int(response["Retry-After"]) >= 1
    body = response.json()
    assert (body["type"], body["title"], body["status"], body["code"]) == (
        "about:blank",
        "Service unavailable",
        503,
        "service_unavailable",
    )
    assert f"The {service} service" in body["detail"] or f"of the {service} service" in body["detail"]
    assert set(body) == {"type", "title", "status", "detail", "code"}


# --- Export --------------------------------------------------------------------------------------
def test_export_gathers_account_profile_addresses_and_orders(customer, user_id, jane, auth, orders):
    profile, address = jane

    response = customer.get(EXPORT)

    assert response.status_code == 200, response.content
    assert response["Content-Disposition"] == f'attachment; filename="bazaar-export-{user_id}.json"'
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert set(body) == {"format", "generated_at", "user_id", "account", "profile", "addresses", "orders"}
    assert body["format"] == "bazaar-privacy-export/1"
    assert body["user_id"] == user_id
    assert body["account"] == _account(user_id).to_json()
    assert body["profile"] == customer.get(ME).json()
    assert [(a["id"], a["line1"], a["is_default_shipping"]) for a in body["addresses"]] == [
        (address.id, address.line1, True)
    ]
    assert body["orders"] == [_order(user_id).to_json()]
    # The calls went out with this service's token, for this user only.
    assert [c.query for c in orders.calls_to("GET", "/internal/v1/orders")] == [{"customer_id": [user_id]}]
    account_calls = auth.calls_to("GET", f"/internal/v1/auth/users/{user_id}")
    assert [c.headers["authorization"] for c in account_calls] == [f"Bearer {FAKE_SERVICE_TOKEN}"]


def test_export_of_a_customer_without_orders_or_addresses(client_as, fake_services):
    user_id = str(uuid.uuid4())
    fake_services.serve(make_fake_auth({user_id: _account(user_id)}))
    fake_services.serve(make_fake_orders({}))

    response = client_as(user_id).get(EXPORT)

    assert response.status_code == 200
    assert (response.json()["addresses"], response.json()["orders"]) == ([], [])
    assert response.json()["profile"]["user_id"] == user_id


def test_export_with_orders_down_is_503_not_a_partial_document(customer, jane, auth, fake_services):
    fake_services.register_dead("orders")

    response = customer.get(EXPORT)

    _assert_unavailable(response, "orders")


def test_export_with_no_orders_instance_is_503(customer, jane, auth):
    response = customer.get(EXPORT)

    _assert_unavailable(response, "orders")
    assert response.json()["detail"] == "No healthy instance of the orders service."


def test_export_with_auth_down_is_503(customer, jane, orders, fake_services):
    fake_services.register_dead("auth")

    response = customer.get(EXPORT)

    _assert_unavailable(response, "auth")
    assert orders.calls == []


def test_export_when_orders_fails_with_a_server_error_is_503(customer, jane, auth, fake_services):
    fake_services.serve(FakeService("orders", {("GET", "/internal/v1/orders"): lambda call: (500, {})}))

    response = customer.get(EXPORT)

    _assert_unavailable(response, "orders")


def test_export_needs_a_user_token(api_client, client_as):
    assert api_client.get(EXPORT).status_code == 401
    assert client_as("service:orders", ("service",)).get(EXPORT).status_code == 403


# --- Erasure -------------------------------------------------------------------------------------
def _erase(client, password: str = CORRECT_PASSWORD):
    return client.delete(ME, {"password": password}, format="json")


def test_erasure_deletes_profile_and_addresses_and_tells_auth_and_orders(customer, user_id, jane, auth):
    profile, address = jane

    response = _erase(customer)

    assert response.status_code == 204
    assert response.content == b""
    assert not Profile.objects.filter(user_id=user_id).exists()
    assert not Address.objects.filter(pk=address.pk).exists()
    assert ErasedUser.objects.filter(user_id=user_id).exists()
    messages = sorted(OutboxMessage.objects.all(), key=lambda m: m.task_name)
    assert [(m.task_name, m.queue, m.payload) for m in messages] == [
        ("auth.user_erased", "auth", {"v": 2, "user_id": user_id}),
        ("orders.user_erased", "orders", {"v": 2, "user_id": user_id}),
    ]
    # Published after commit (by the relay if the broker is down): here the test transaction
    # never commits, so they wait, unpublished, exactly as they would while the broker is down.
    assert [m.published_at for m in messages] == [None, None]
    verify_calls = auth.calls_to("POST", f"/internal/v1/auth/users/{user_id}/verify-password")
    assert [c.body for c in verify_calls] == [{"password": CORRECT_PASSWORD}]


def test_erasure_is_idempotent(customer, user_id, jane, auth):
    assert _erase(customer).status_code == 204

    again = _erase(customer)

    assert again.status_code == 204
    assert OutboxMessage.objects.count() == 2  # no second announcement
    assert ErasedUser.objects.filter(user_id=user_id).count() == 1
    # The second request did not even need auth (whose account is deactivated by then).
    assert len(auth.calls_to("POST", f"/internal/v1/auth/users/{user_id}/verify-password")) == 1


def test_erasure_of_a_user_without_a_profile(customer, user_id, auth):
    assert _erase(customer).status_code == 204

    assert ErasedUser.objects.filter(user_id=user_id).exists()
    assert OutboxMessage.objects.count() == 2


def test_wrong_password_erases_nothing(customer, user_id, jane, auth):
    response = _erase(customer, "not my password")

    assert response.status_code == 403
    assert response.json() == {
        "type": "about:blank",
        "title": "Forbidden",
        "status": 403,
        "detail": "The request was refused.",
        "errors": [{"field": "password", "reason": "The password is incorrect."}],
    }
    assert Profile.objects.filter(user_id=user_id).exists()
    assert not ErasedUser.objects.exists()
    assert OutboxMessage.objects.count() == 0


def test_erasure_needs_the_password(customer, user_id, jane, auth):
    response = customer.delete(ME, {}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == [{"field": "password", "reason": "This field is required."}]
    assert auth.calls == []
    assert Profile.objects.filter(user_id=user_id).exists()


def test_erasure_refuses_unknown_fields(customer, jane, auth):
    response = customer.delete(ME, {"password": CORRECT_PASSWORD, "keep_orders": True}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == [{"field": "keep_orders", "reason": "Unknown field."}]


def test_erasure_with_auth_down_is_503_and_erases_nothing(customer, user_id, jane, fake_services):
    fake_services.register_dead("auth")

    response = _erase(customer)

    _assert_unavailable(response, "auth")
    assert Profile.objects.filter(user_id=user_id).exists()
    assert not ErasedUser.objects.exists()
    assert OutboxMessage.objects.count() == 0


def test_after_erasure_the_profile_is_gone_and_stays_gone(customer, user_id, jane, auth):
    assert _erase(customer).status_code == 204

    # The access token is still valid for a few minutes: it must not bring the profile back.
    for response in (
        customer.get(ME),
        customer.patch(ME, {"display_name": "Back"}, format="json"),
        customer.get("/api/v1/profiles/me/addresses"),
        customer.get(EXPORT),
    ):
        assert response.status_code == 410
        assert response.json() == {
            "type": "about:blank",
            "title": "Error",
            "status": 410,
            "detail": "This account's data has been erased.",
            "code": "erased",
        }
    # Nor may a late registration message.
    user_registered(message_id=str(uuid.uuid4()), payload={"user_id": user_id, "email": "jane@example.com"})
    assert not Profile.objects.filter(user_id=user_id).exists()


@pytest.mark.django_db(transaction=True)
def test_erasure_messages_are_published_to_the_other_services_queues_after_commit(
    customer, user_id, jane, auth, settings
):
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    broker.delete("auth", "orders")

    assert _erase(customer).status_code == 204

    # The request committed and returned; the process's publisher thread sends the messages.
    assert publisher.wait_idle(10)
    assert [m.published_at is not None for m in OutboxMessage.objects.all()] == [True, True]
    for queue, task in (("auth", "auth.user_erased"), ("orders", "orders.user_erased")):
        raw = broker.lpop(queue)
        assert raw is not None, f"nothing on the {queue} queue"
        message = json.loads(raw)
        assert message["headers"]["task"] == task
        assert message["properties"]["delivery_info"]["routing_key"] == queue
    broker.delete("auth", "orders")
