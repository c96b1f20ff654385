"""Internal HTTP contracts: every request and response body that crosses ``/internal/`` between services.

Each internal endpoint is one :class:`Endpoint` below (service, method, path, its request body,
query and answer classes), listed in :data:`INTERNAL_ENDPOINTS`. Both sides use the same classes:

* the endpoint (producer of the answer) builds its answer from the class (``Answer(...).to_json()``)
  and parses a request body with it (``bazaar_common.drf.parse_body``), so a malformed body is a 400
  naming the field, never a ``KeyError``;
* the caller (``clients.py``/``remote.py``) builds the request from the class and parses the answer
  into it (``bazaar_common.http.answer_as``), getting typed objects, never dicts; an answer that does
  not parse is the other service failing (503), not a traceback;
* the test stand-ins of a neighbour build their answers from the same classes, so they cannot drift
  from what the real service sends.

Why pydantic (as for the messages in :mod:`bazaar_common.contracts.messages`): exact, named validation
errors; JSON-mode dumping of decimals, UUIDs, datetimes and enums in one agreed format; one class
serves both directions.

Compatibility: an answer may carry fields a caller does not know yet (``extra="ignore"``: the
producer may deploy a new field first); a caller never sends a field the endpoint does not know
(request bodies are ``extra="forbid"``: an endpoint refuses what it would otherwise silently drop),
so a new request field is deployed on the endpoint before any caller sends it.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Self

from pydantic import BaseModel, ConfigDict, Field, IPvAnyAddress, ValidationError, field_serializer

__all__ = [
    "INTERNAL_ENDPOINTS",
    "Account",
    "AdminLoginRequest",
    "Body",
    "CatalogProducts",
    "CustomerOrders",
    "CustomerOrdersQuery",
    "DefaultShippingAddress",
    "Endpoint",
    "MalformedBody",
    "OrderDocument",
    "OrderEvent",
    "OrderLine",
    "OrderTotals",
    "PasswordCheckRequest",
    "ProductSnapshot",
    "ProductsQuery",
    "Query",
    "ReservationState",
    "ReservationStatus",
    "Reservations",
    "ReservationsQuery",
    "ServiceToken",
    "ServiceTokenRequest",
    "ShippingAddress",
    "StaffIdentityAnswer",
    "UserMerchants",
    "endpoint",
]

# Limits shared by the endpoint that enforces them and the caller that must stay within them.
MAX_IDS = 200
MAX_ORDER_ID_LENGTH = 64

Money = Annotated[Decimal, Field(max_digits=14, decimal_places=2)]


class MalformedBody(ValueError):
    """A body that is not a valid document of its class; ``errors`` maps each field path to reasons."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{path}: {', '.join(reasons)}" for path, reasons in errors.items()))


def _field_errors(exc: ValidationError) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    for error in exc.errors():
        path = ".".join(map(str, error["loc"])) or "(body)"
        errors.setdefault(path, []).append(error["msg"])
    return errors


class Body(BaseModel):
    """Base of every internal HTTP body. ``to_json`` is what travels; ``parse`` reads it back."""

    model_config = ConfigDict(frozen=True, strict=True, extra="ignore")

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @classmethod
    def parse(cls, raw: bytes | str | Any) -> Self:
        """The document in ``raw`` (JSON text, or already decoded JSON), or :class:`MalformedBody`."""
        try:
            if isinstance(raw, bytes | str):
                return cls.model_validate_json(raw or b"null")
            # Decoded JSON: go back through JSON mode so strict typing and formats apply exactly as
            # they do to the text (a decimal as a string, a UUID as text).
            import json

            return cls.model_validate_json(json.dumps(raw))
        except ValidationError as exc:
            raise MalformedBody(_field_errors(exc)) from exc


class RequestBody(Body):
    """A request body: an unknown field is refused rather than silently dropped."""

    model_config = ConfigDict(frozen=True, strict=True, extra="forbid")


class Query(BaseModel):
    """Query parameters of an internal GET, as the caller builds them (``to_query``)."""

    model_config = ConfigDict(frozen=True, strict=True, extra="forbid")

    def to_query(self) -> dict[str, str]:
        raise NotImplementedError


# --- auth ------------------------------------------------------------------------------------------


class ServiceTokenRequest(RequestBody):
    """A service's own credential (``SERVICE_CLIENT_ID``/``SERVICE_CLIENT_SECRET``)."""

    client_id: str = Field(min_length=1, max_length=64)
    client_secret: str = Field(min_length=1, max_length=512)


class ServiceToken(Body):
    """A short-lived token with role ``service``; renew it after half of ``expires_in``."""

    access: str = Field(min_length=1)
    expires_in: int = Field(ge=1)


class AdminLoginRequest(RequestBody):
    """Credentials typed into some service's Django admin, and the address of the person typing."""

    email: str = Field(min_length=1, max_length=254)
    password: str = Field(min_length=1, max_length=512)
    client_ip: IPvAnyAddress | None = None


class StaffIdentityAnswer(Body):
    """Whose credentials they are, and the roles auth holds for them."""

    user_id: uuid.UUID
    email: str
    roles: list[str]


class Account(Body):
    """The plain data other services get about a user account."""

    id: uuid.UUID
    email: str
    roles: list[str]
    is_active: bool
    date_joined: datetime
    last_login: datetime | None


class PasswordCheckRequest(RequestBody):
    """A password to confirm before something drastic (answered 204 when right, 403 when not)."""

    password: str = Field(min_length=1, max_length=512)


# --- catalog ---------------------------------------------------------------------------------------


class ProductsQuery(Query):
    ids: list[int] = Field(min_length=1, max_length=MAX_IDS)

    def to_query(self) -> dict[str, str]:
        return {"ids": ",".join(map(str, self.ids))}


class ProductSnapshot(Body):
    """A product's current price and availability, as checkout prices an order line."""

    id: int = Field(ge=1)
    merchant_id: int = Field(ge=1)
    sku: str
    name: str
    price: Money
    currency: str = Field(min_length=3, max_length=3)
    # False for an inactive product and for every product of an inactive merchant.
    is_active: bool
    available: int = Field(ge=0)

    @field_serializer("price")
    def _two_places(self, price: Decimal) -> str:
        return f"{price:.2f}"


class CatalogProducts(Body):
    results: list[ProductSnapshot]
    # Asked-for ids the catalog does not have (a caller treats an id in neither list the same way).
    missing: list[int]


class UserMerchants(Body):
    merchant_ids: list[int]


class ReservationStatus(enum.StrEnum):
    HELD = "held"
    COMMITTED = "committed"
    RELEASED = "released"
    REJECTED = "rejected"


class ReservationsQuery(Query):
    """Either some orders' reservations, or the held ones idle for at least ``held_idle_seconds``."""

    order_ids: list[Annotated[str, Field(min_length=1, max_length=MAX_ORDER_ID_LENGTH)]] | None = Field(
        default=None, min_length=1, max_length=MAX_IDS
    )
    held_idle_seconds: int | None = Field(default=None, ge=0, le=30 * 24 * 3600)

    def to_query(self) -> dict[str, str]:
        if (self.order_ids is None) == (self.held_idle_seconds is None):
            raise ValueError("Give either order_ids or held_idle_seconds.")
        if self.order_ids is not None:
            return {"order_ids": ",".join(self.order_ids)}
        return {"held_idle_seconds": str(self.held_idle_seconds)}


class ReservationState(Body):
    """The catalog's reservation of one order, as the order service's reconciliation compares it."""

    order_id: str
    status: ReservationStatus
    release_reason: str


class Reservations(Body):
    results: list[ReservationState]


# --- profiles --------------------------------------------------------------------------------------


class ShippingAddress(Body):
    """The address fields an order copies (checkout's own input has exactly these fields)."""

    full_name: str
    line1: str
    line2: str = ""
    city: str
    postal_code: str = ""
    region: str = ""
    country: str = Field(pattern=r"^[A-Z]{2}$")
    phone: str = ""


class DefaultShippingAddress(ShippingAddress):
    id: int

    def address(self) -> ShippingAddress:
        return ShippingAddress.model_validate(self.model_dump(exclude={"id"}))


# --- orders ----------------------------------------------------------------------------------------


class OrderLine(Body):
    product_id: int
    merchant_id: int
    sku: str
    name: str
    unit_price: Decimal
    quantity: int
    currency: str
    line_total: Decimal
    shipped_at: datetime | None


class OrderTotals(Body):
    subtotal: Decimal
    total: Decimal
    refunded: Decimal
    currency: str


class OrderEvent(Body):
    kind: str
    from_status: str
    to_status: str
    actor: str
    reason: str
    at: datetime


class OrderDocument(Body):
    """One order as the order service documents it (the privacy export carries it unchanged)."""

    id: uuid.UUID
    status: str
    customer_id: uuid.UUID | None
    buyer_reference: str
    customer_email: str | None
    currency: str
    lines: list[OrderLine]
    totals: OrderTotals
    shipping_address: ShippingAddress | None
    rejection: dict[str, Any] | None
    timeline: list[OrderEvent]
    payment_due_at: datetime | None
    created_at: datetime
    updated_at: datetime
    reserved_at: datetime | None
    paid_at: datetime | None
    shipped_at: datetime | None
    delivered_at: datetime | None
    cancelled_at: datetime | None


class CustomerOrdersQuery(Query):
    customer_id: uuid.UUID

    def to_query(self) -> dict[str, str]:
        return {"customer_id": str(self.customer_id)}


class CustomerOrders(Body):
    results: list[OrderDocument]


# --- The endpoints ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    """One internal endpoint: who serves it, where, and the classes of what goes in and out.

    ``path`` is a template (``{user_id}``); ``answer`` is the 2xx body's class, ``None`` for a 204.
    """

    service: str
    method: str
    path: str
    answer: type[Body] | None
    request: type[RequestBody] | None = None
    query: type[Query] | None = None

    def url(self, **params: Any) -> str:
        return self.path.format(**params)


SERVICE_TOKEN = Endpoint("auth", "POST", "/internal/v1/auth/service-token", ServiceToken, ServiceTokenRequest)
ADMIN_LOGIN = Endpoint("auth", "POST", "/internal/v1/auth/admin-login", StaffIdentityAnswer, AdminLoginRequest)
AUTH_ACCOUNT = Endpoint("auth", "GET", "/internal/v1/auth/users/{user_id}", Account)
PASSWORD_CHECK = Endpoint(
    "auth", "POST", "/internal/v1/auth/users/{user_id}/verify-password", None, PasswordCheckRequest
)
CATALOG_PRODUCTS = Endpoint("catalog", "GET", "/internal/v1/catalog/products", CatalogProducts, query=ProductsQuery)
CATALOG_RESERVATIONS = Endpoint(
    "catalog", "GET", "/internal/v1/catalog/reservations", Reservations, query=ReservationsQuery
)
CATALOG_USER_MERCHANTS = Endpoint("catalog", "GET", "/internal/v1/catalog/users/{user_id}/merchants", UserMerchants)
PROFILES_DEFAULT_SHIPPING_ADDRESS = Endpoint(
    "profiles", "GET", "/internal/v1/profiles/{user_id}/default-shipping-address", DefaultShippingAddress
)
ORDERS_OF_CUSTOMER = Endpoint("orders", "GET", "/internal/v1/orders", CustomerOrders, query=CustomerOrdersQuery)

INTERNAL_ENDPOINTS: tuple[Endpoint, ...] = (
    SERVICE_TOKEN,
    ADMIN_LOGIN,
    AUTH_ACCOUNT,
    PASSWORD_CHECK,
    CATALOG_PRODUCTS,
    CATALOG_RESERVATIONS,
    CATALOG_USER_MERCHANTS,
    PROFILES_DEFAULT_SHIPPING_ADDRESS,
    ORDERS_OF_CUSTOMER,
)


def endpoint(method: str, path: str) -> Endpoint | None:
    """The endpoint a concrete request goes to (``/internal/v1/auth/users/<id>`` finds AUTH_ACCOUNT)."""
    wanted = path.strip("/").split("/")
    for candidate in INTERNAL_ENDPOINTS:
        parts = candidate.path.strip("/").split("/")
        if candidate.method != method or len(parts) != len(wanted):
            continue
        if all(p == w or (p.startswith("{") and p.endswith("}")) for p, w in zip(parts, wanted, strict=True)):
            return candidate
    return None
