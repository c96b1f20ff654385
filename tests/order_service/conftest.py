"""Fixtures of the order service's tests.

``neighbours`` runs one real HTTP server in this process (a :class:`~bazaar_devtools.standin.StandIn`)
that answers the internal endpoints the order service calls (auth's service token, the catalog's
products and merchants, the profiles' default address) and registers it in the real discovery
registry (Redis), so every call goes through the real service client: discovery, service token,
timeouts, breakers. The e2e suite runs the real services instead.

Its answers are built from the contract classes of ``bazaar_common.contracts.http``, the same ones
the real catalog, profiles and auth build theirs from, so the stand-in cannot drift from them.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest
from factories import MERCHANT_A
from rest_framework.test import APIClient

from bazaar_common import contracts
from bazaar_common.auth import service_tokens
from bazaar_common.auth.testing import make_token
from bazaar_common.contracts import http as internal
from bazaar_devtools.standin import Call, Registrations, StandIn, requires_service_token

NEIGHBOUR_SERVICES = ("auth", "catalog", "profiles")


@dataclass
class Neighbours:
    """The state the fake neighbours serve; tests change it freely."""

    products: dict[int, internal.ProductSnapshot] = field(default_factory=dict)
    merchants_of_user: dict[str, list[int]] = field(default_factory=dict)
    # Customer id -> default shipping address fields (as ``internal.ShippingAddress`` takes them).
    addresses: dict[str, dict[str, Any]] = field(default_factory=dict)
    # The catalog's reservations: order id -> (status, release_reason), and which are held idle.
    reservations: dict[str, tuple[str, str]] = field(default_factory=dict)
    held_idle: list[str] = field(default_factory=list)
    stand_in: StandIn = field(init=False)
    registrations: Registrations = field(init=False)

    def __post_init__(self) -> None:
        self.stand_in = StandIn(self.answer)
        self.registrations = Registrations()

    @property
    def base_url(self) -> str:
        return self.stand_in.base_url

    @property
    def calls(self) -> list[tuple[str, str]]:
        """Every request received, as ``(method, path)``, oldest first."""
        return [(call.method, call.path) for call in self.stand_in.calls]

    def add_product(
        self, product_id: int, *, price: str = "10.00", merchant_id: int = MERCHANT_A, active: bool = True
    ) -> internal.ProductSnapshot:
        product = internal.ProductSnapshot(
            id=product_id,
            merchant_id=merchant_id,
            sku=f"SKU-{product_id}",
            name=f"Product {product_id}",
            price=Decimal(price),
            currency="EUR",
            is_active=active,
            available=100,
        )
        self.products[product_id] = product
        return product

    def answer(self, call: Call) -> tuple[int, Any]:
        # auth's endpoints are how a caller gets its service token, so they cannot demand one;
        # every other internal endpoint, like the real ones, answers only a valid service token.
        if call.path.startswith("/internal/v1/auth/"):
            return self._answer(call)
        return requires_service_token(self._answer)(call)

    def _answer(self, call: Call) -> tuple[int, Any]:
        method, path, query = call.method, call.path, call.query
        if (method, path) == ("POST", internal.SERVICE_TOKEN.path):
            internal.ServiceTokenRequest.parse(call.body)  # the caller's request is the contract's
            token = internal.ServiceToken(access=make_token("service:orders", ("service",)), expires_in=300)
            return 200, token.to_json()
        if path == internal.CATALOG_PRODUCTS.path:
            ids = [int(i) for i in query.get("ids", [""])[0].split(",") if i]
            products = internal.CatalogProducts(
                results=[self.products[i] for i in ids if i in self.products],
                missing=[i for i in ids if i not in self.products],
            )
            return 200, products.to_json()
        if path == internal.CATALOG_RESERVATIONS.path:
            if "order_ids" in query:
                wanted = [i for i in query["order_ids"][0].split(",") if i in self.reservations]
            else:
                wanted = list(self.held_idle)
            reservations = internal.Reservations(
                results=[
                    internal.ReservationState(
                        order_id=i,
                        status=internal.ReservationStatus(self.reservations[i][0]),
                        release_reason=self.reservations[i][1],
                    )
                    for i in wanted
                ]
            )
            return 200, reservations.to_json()
        found = internal.endpoint(method, path)
        user_id = path.strip("/").split("/")[-2] if found else ""
        if found is internal.CATALOG_USER_MERCHANTS:
            return 200, internal.UserMerchants(merchant_ids=self.merchants_of_user.get(user_id, [])).to_json()
        if found is internal.PROFILES_DEFAULT_SHIPPING_ADDRESS:
            address = self.addresses.get(user_id)
            if address is None:
                return 404, {"detail": "No default address."}
            return 200, internal.DefaultShippingAddress(id=1, **address).to_json()
        return 404, {"detail": "not found"}

    def register(self, service: str, base_url: str | None = None) -> None:
        self.registrations.register(service, base_url or self.base_url)

    def deregister(self, service: str) -> None:
        self.registrations.deregister(service)

    def take_down(self, service: str) -> None:
        """The service's only instance dies without deregistering: nothing listens there."""
        self.deregister(service)
        self.registrations.register_dead(service)


@pytest.fixture
def neighbours(monkeypatch: pytest.MonkeyPatch) -> Iterator[Neighbours]:
    monkeypatch.setenv("SERVICE_CLIENT_ID", "orders")
    monkeypatch.setenv("SERVICE_CLIENT_SECRET", "orders-test-secret")
    service_tokens.forget_service_token()
    state = Neighbours()
    state.stand_in.start()
    for service in NEIGHBOUR_SERVICES:
        state.register(service)
    yield state
    state.registrations.close()
    state.stand_in.stop()
    service_tokens.forget_service_token()


@pytest.fixture
def customer_id() -> str:
    return str(uuid.uuid4())


CUSTOMER_EMAIL = "buyer@example.com"


@pytest.fixture
def customer(token_for, customer_id) -> APIClient:
    """The customer ``customer_id``, whose token carries the email claim as the auth service's does."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(customer_id, ('customer',), email=CUSTOMER_EMAIL)}")
    return client


class OrderFlow:
    """Drives an order through the API and the saga's real consumers (as the catalog's replies)."""

    def __init__(self, client: APIClient, neighbours: Neighbours) -> None:
        self.client = client
        self.neighbours = neighbours

    def checkout(self, items: list[tuple[int, int]], **headers: str) -> Any:
        for product_id, _ in items:
            if product_id not in self.neighbours.products:
                self.neighbours.add_product(product_id)
        body = {"items": [{"product_id": pid, "quantity": qty} for pid, qty in items]}
        return self.client.post("/api/v1/orders", body, format="json", **headers)

    def place(self, items: list[tuple[int, int]] = ((1, 2),)) -> str:
        response = self.checkout(list(items))
        assert response.status_code == 202, response.json()
        return response.json()["id"]

    @staticmethod
    def reply_reserved(order_id: str, message_id: str | None = None) -> bool:
        from order_service.orders.tasks import stock_reserved

        reply = contracts.StockReserved(order_id=order_id)
        return stock_reserved(message_id=message_id or str(uuid.uuid4()), payload=reply.to_payload())

    @staticmethod
    def reply_rejected(order_id: str, shortages: list[dict[str, Any]], message_id: str | None = None) -> bool:
        from order_service.orders.tasks import stock_rejected

        return stock_rejected(
            message_id=message_id or str(uuid.uuid4()),
            payload=contracts.StockRejected(
                order_id=order_id,
                reason=contracts.RejectReason.OUT_OF_STOCK,
                shortages=[contracts.Shortage(**shortage) for shortage in shortages],
            ).to_payload(),
        )

    def place_reserved(self, items: list[tuple[int, int]] = ((1, 2),)) -> str:
        order_id = self.place(items)
        self.reply_reserved(order_id)
        return order_id

    def pay(self, order_id: str, card_token: str = "tok_success") -> Any:
        return self.client.post(f"/api/v1/orders/{order_id}/pay", {"card_token": card_token}, format="json")

    def place_paid(self, items: list[tuple[int, int]] = ((1, 2),)) -> str:
        order_id = self.place_reserved(items)
        assert self.pay(order_id).status_code == 200
        return order_id

    def get(self, order_id: str) -> dict[str, Any]:
        response = self.client.get(f"/api/v1/orders/{order_id}")
        assert response.status_code == 200
        return response.json()


@pytest.fixture
def flow(customer, neighbours) -> OrderFlow:
    return OrderFlow(customer, neighbours)


def outbox(task_name: str | None = None) -> list[tuple[str, dict[str, Any]]]:
    """The messages written to the outbox, oldest first, as (task name, payload), each checked
    against its contract."""
    from bazaar_common.outbox.models import OutboxMessage

    messages = OutboxMessage.objects.order_by("created_at", "id")
    if task_name:
        messages = messages.filter(task_name=task_name)
    for message in messages:
        # What the order service produced parses on the consumer side (the contract test).
        contract = contracts.message_class_for(message.task_name)
        assert contract is not None, message.task_name
        contract.parse(message.payload)
    return [(m.task_name, m.payload) for m in messages]


@pytest.fixture
def outbox_messages():
    return outbox
