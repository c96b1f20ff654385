"""Small fakes of other services' internal APIs, for the profile service's unit tests only.

The fakes are :class:`~bazaar_devtools.standin.StandIn` servers: real HTTP servers in this process,
registered in the real discovery registry (Redis), so the calls go through the real service client:
discovery, service token, timeouts, breakers. The e2e suite runs the real auth and order services
instead.

Their answers are built from the contract classes of ``bazaar_common.contracts.http`` (the ones the
real auth and orders build theirs from), so a fake cannot answer what the real service never would.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from bazaar_common.contracts import http as internal
from bazaar_devtools.standin import Call, Handler, Registrations, StandIn

SERVICE_CLIENT_ID = "profiles"
SERVICE_CLIENT_SECRET = "profiles-test-secret"
FAKE_SERVICE_TOKEN = "fake-service-token-for-profiles"
CORRECT_PASSWORD = "correct horse battery staple"


class FakeService(StandIn):
    """One fake instance of service ``name``: routes ``(method, path) -> handler(call) -> (status, json body)``."""

    def __init__(self, name: str, routes: dict[tuple[str, str], Handler]) -> None:
        super().__init__(self._route)
        self.name = name
        self.routes = routes

    def _route(self, call: Call) -> tuple[int, Any]:
        handler = self.routes.get((call.method, call.path))
        return handler(call) if handler else (404, {"detail": "not found"})


def requires_fake_service_token(handler: Handler) -> Handler:
    """Only the opaque token the fake auth hands out gets an answer.

    Unlike :func:`bazaar_devtools.standin.requires_service_token` this checks for one exact token, on
    purpose: the tests then prove that the token profiles presents is the one it got from auth's
    service-token endpoint with its own client credentials, not any token that happens to verify.
    """

    def guarded(call: Call) -> tuple[int, Any]:
        if call.headers.get("authorization") != f"Bearer {FAKE_SERVICE_TOKEN}":
            return 401, {"detail": "service token required"}
        return handler(call)

    return guarded


class FakeServices(Registrations):
    """Starts fakes and registers them in discovery for one test; ``close()`` removes and stops them all."""

    def __init__(self) -> None:
        super().__init__()
        self._fakes: list[FakeService] = []

    def serve(self, fake: FakeService) -> FakeService:
        self._fakes.append(fake.start())
        self.register(fake.name, fake.base_url)
        return fake

    def close(self) -> None:
        super().close()
        for fake in self._fakes:
            fake.stop()


def account(user_id: str, *, roles: list[str] | None = None, email: str | None = None) -> internal.Account:
    """An account document as auth's ``GET /internal/v1/auth/users/{id}`` answers it."""
    return internal.Account(
        id=uuid.UUID(user_id),
        email=email or f"user-{user_id[:8]}@example.com",
        roles=roles or ["customer"],
        is_active=True,
        date_joined=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        last_login=None,
    )


def order_document(
    customer_id: str, *, order_id: str = "0b9d6f4e-3d0f-4a43-9c36-5a1c1c7f9d11"
) -> internal.OrderDocument:
    """A paid order of one line, as the order service's internal list documents it."""
    at = datetime(2026, 1, 3, tzinfo=UTC)
    return internal.OrderDocument(
        id=uuid.UUID(order_id),
        status="paid",
        customer_id=uuid.UUID(customer_id),
        buyer_reference="buyer_0123456789abcdef",
        customer_email="jane@example.com",
        currency="EUR",
        lines=[
            internal.OrderLine(
                product_id=7,
                merchant_id=3,
                sku="SKU-7",
                name="Teapot",
                unit_price=Decimal("12.50"),
                quantity=2,
                currency="EUR",
                line_total=Decimal("25.00"),
                shipped_at=None,
            )
        ],
        totals=internal.OrderTotals(
            subtotal=Decimal("25.00"), total=Decimal("25.00"), refunded=Decimal("0.00"), currency="EUR"
        ),
        shipping_address=internal.ShippingAddress(
            full_name="Jane Doe", line1="Main Street 1", city="Berlin", country="DE"
        ),
        rejection=None,
        timeline=[
            internal.OrderEvent(
                kind="created", from_status="", to_status="pending", actor="customer", reason="Checkout.", at=at
            )
        ],
        payment_due_at=None,
        created_at=at,
        updated_at=at,
        reserved_at=at,
        paid_at=at,
        shipped_at=None,
        delivered_at=None,
        cancelled_at=None,
    )


def make_fake_auth(accounts: dict[str, internal.Account]) -> FakeService:
    """auth's internal API: service tokens, accounts, password checks, admin sign-in.

    Every account's password is CORRECT_PASSWORD.
    """

    def admin_login(call: Call) -> tuple[int, Any]:
        body = internal.AdminLoginRequest.parse(call.body)
        for known in accounts.values():
            if body.email == known.email and body.password == CORRECT_PASSWORD:
                answer = internal.StaffIdentityAnswer(user_id=known.id, email=known.email, roles=known.roles)
                return 200, answer.to_json()
        return 401, {"detail": "wrong credentials"}

    def service_token(call: Call) -> tuple[int, Any]:
        body = internal.ServiceTokenRequest.parse(call.body)
        if (body.client_id, body.client_secret) != (SERVICE_CLIENT_ID, SERVICE_CLIENT_SECRET):
            return 401, {"detail": "bad credentials"}
        return 200, internal.ServiceToken(access=FAKE_SERVICE_TOKEN, expires_in=300).to_json()

    def verify_password(call: Call) -> tuple[int, Any]:
        body = internal.PasswordCheckRequest.parse(call.body)
        return (204, None) if body.password == CORRECT_PASSWORD else (403, {"detail": "no"})

    routes: dict[tuple[str, str], Handler] = {
        (internal.SERVICE_TOKEN.method, internal.SERVICE_TOKEN.path): service_token,
        (internal.ADMIN_LOGIN.method, internal.ADMIN_LOGIN.path): requires_fake_service_token(admin_login),
    }
    for user_id, known in accounts.items():
        routes[(internal.AUTH_ACCOUNT.method, internal.AUTH_ACCOUNT.url(user_id=user_id))] = (
            requires_fake_service_token(lambda call, known=known: (200, known.to_json()))
        )
        routes[(internal.PASSWORD_CHECK.method, internal.PASSWORD_CHECK.url(user_id=user_id))] = (
            requires_fake_service_token(verify_password)
        )
    return FakeService("auth", routes)


def make_fake_orders(orders_by_customer: dict[str, list[internal.OrderDocument]]) -> FakeService:
    def list_orders(call: Call) -> tuple[int, Any]:
        customer_id = call.query.get("customer_id", [""])[0]
        return 200, internal.CustomerOrders(results=orders_by_customer.get(customer_id, [])).to_json()

    call = internal.ORDERS_OF_CUSTOMER
    return FakeService("orders", {(call.method, call.path): requires_fake_service_token(list_orders)})
