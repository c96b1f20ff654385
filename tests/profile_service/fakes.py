"""Small fakes of other services' internal APIs, for the profile service's unit tests only.

The fakes are real HTTP servers in this process, registered in the real discovery registry (Redis),
so the calls go through the real service client: discovery, service token, timeouts, breakers.
The e2e suite runs the real auth and order services instead.
"""

from __future__ import annotations

import json
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from bazaar_common.discovery import Instance, get_registry

SERVICE_CLIENT_ID = "profiles"
SERVICE_CLIENT_SECRET = "profiles-test-secret"
FAKE_SERVICE_TOKEN = "fake-service-token-for-profiles"
CORRECT_PASSWORD = "correct horse battery staple"

Handler = Callable[["Call"], tuple[int, Any]]


@dataclass
class Call:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any


@dataclass
class FakeService:
    """One fake instance: routes ``(method, path) -> handler(call) -> (status, json body)``."""

    name: str
    routes: dict[tuple[str, str], Handler]
    calls: list[Call] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def calls_to(self, method: str, path: str) -> list[Call]:
        return [c for c in self.calls if c.method == method and c.path == path]

    def start(self) -> FakeService:
        fake = self

        class RequestHandler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                url = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                call = Call(
                    method=self.command,
                    path=url.path,
                    query=parse_qs(url.query),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=json.loads(raw) if raw else None,
                )
                fake.calls.append(call)
                handler = fake.routes.get((self.command, url.path))
                status, body = handler(call) if handler else (404, {"detail": "not found"})
                payload = b"" if body is None else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_DELETE = _handle  # noqa: N815 (http.server's naming)

            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), RequestHandler)
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


def closed_port_url() -> str:
    """A URL where nothing listens: a service instance that died without deregistering."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def requires_service_token(handler: Handler) -> Handler:
    def guarded(call: Call) -> tuple[int, Any]:
        if call.headers.get("authorization") != f"Bearer {FAKE_SERVICE_TOKEN}":
            return 401, {"detail": "service token required"}
        return handler(call)

    return guarded


class FakeServices:
    """Registers fake instances in discovery for one test and removes them afterwards."""

    def __init__(self) -> None:
        self.registry = get_registry()
        self._registered: list[Instance] = []
        self._fakes: list[FakeService] = []

    def register(self, service: str, base_url: str) -> None:
        instance = Instance(service=service, instance_id=f"test-{service}-{uuid.uuid4().hex[:8]}", base_url=base_url)
        self.registry.register(instance)
        self.registry.invalidate(service)
        self._registered.append(instance)

    def serve(self, fake: FakeService) -> FakeService:
        self._fakes.append(fake.start())
        self.register(fake.name, fake.base_url)
        return fake

    def register_dead(self, service: str) -> None:
        self.register(service, closed_port_url())

    def close(self) -> None:
        for instance in self._registered:
            self.registry.deregister(instance.service, instance.instance_id)
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
        ("POST", "/internal/v1/auth/admin-login"): requires_service_token(admin_login),
    }
    for user_id, account in accounts.items():
        routes[("GET", f"/internal/v1/auth/users/{user_id}")] = requires_service_token(
            lambda call, account=account: (200, account)
        )
        routes[("POST", f"/internal/v1/auth/users/{user_id}/verify-password")] = requires_service_token(
            lambda call: (204, None) if call.body == {"password": CORRECT_PASSWORD} else (403, {"detail": "no"})
        )
    return FakeService("auth", routes)


def make_fake_orders(orders_by_customer: dict[str, list[dict[str, Any]]]) -> FakeService:
    def list_orders(call: Call) -> tuple[int, Any]:
        customer_id = call.query.get("customer_id", [""])[0]
        return 200, {"results": orders_by_customer.get(customer_id, [])}

    return FakeService("orders", {("GET", "/internal/v1/orders"): requires_service_token(list_orders)})
