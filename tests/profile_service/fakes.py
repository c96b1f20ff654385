"""Small fakes of other services' internal APIs, for the profile service's unit tests only.

The fakes are :class:`~bazaar_devtools.standin.StandIn` servers: real HTTP servers in this process,
registered in the real discovery registry (Redis), so the calls go through the real service client:
discovery, service token, timeouts, breakers. The e2e suite runs the real auth and order services
instead.
"""

from __future__ import annotations

from typing import Any

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


def make_fake_auth(accounts: dict[str, dict[str, Any]]) -> FakeService:
    """auth's internal API: service tokens, accounts, password checks, admin sign-in.

    Every account's password is CORRECT_PASSWORD.
    """

    def admin_login(call: Call) -> tuple[int, Any]:
        body = call.body or {}
        for account in accounts.values():
            if body.get("email") == account["email"] and body.get("password") == CORRECT_PASSWORD:
                return 200, {"user_id": account["id"], "email": account["email"], "roles": account["roles"]}
        return 401, {"detail": "wrong credentials"}

    def service_token(call: Call) -> tuple[int, Any]:
        if call.body != {"client_id": SERVICE_CLIENT_ID, "client_secret": SERVICE_CLIENT_SECRET}:
            return 401, {"detail": "bad credentials"}
        return 200, {"access": FAKE_SERVICE_TOKEN, "expires_in": 300}

    routes: dict[tuple[str, str], Handler] = {
        ("POST", "/internal/v1/auth/service-token"): service_token,
        ("POST", "/internal/v1/auth/admin-login"): requires_fake_service_token(admin_login),
    }
    for user_id, account in accounts.items():
        routes[("GET", f"/internal/v1/auth/users/{user_id}")] = requires_fake_service_token(
            lambda call, account=account: (200, account)
        )
        routes[("POST", f"/internal/v1/auth/users/{user_id}/verify-password")] = requires_fake_service_token(
            lambda call: (204, None) if call.body == {"password": CORRECT_PASSWORD} else (403, {"detail": "no"})
        )
    return FakeService("auth", routes)


def make_fake_orders(orders_by_customer: dict[str, list[dict[str, Any]]]) -> FakeService:
    def list_orders(call: Call) -> tuple[int, Any]:
        customer_id = call.query.get("customer_id", [""])[0]
        return 200, {"results": orders_by_customer.get(customer_id, [])}

    return FakeService("orders", {("GET", "/internal/v1/orders"): requires_fake_service_token(list_orders)})
