"""What the order service asks other services over HTTP, as typed plain data.

Every call goes through :func:`bazaar_common.http.service_client` (discovery, service token,
timeouts, breakers). A service that is down surfaces as ``ServiceUnavailable``/``GatewayTimeout``
(503/504 with ``Retry-After``); an answer we cannot understand is treated the same way, because the
request cannot be completed correctly without it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.core.cache import cache
from rest_framework.exceptions import ValidationError

from bazaar_common.errors import ServiceUnavailable
from bazaar_common.http import service_client

CATALOG = "catalog"
PROFILES = "profiles"
ADDRESS_FIELDS = ("full_name", "line1", "line2", "city", "postal_code", "region", "country", "phone")


@dataclass(frozen=True)
class ProductSnapshot:
    id: int
    merchant_id: int
    sku: str
    name: str
    price: Decimal
    currency: str
    is_active: bool
    available: int


@dataclass(frozen=True)
class ProductLookup:
    found: dict[int, ProductSnapshot]
    missing: frozenset[int]


def _unexpected(service: str, status: int) -> ServiceUnavailable:
    return ServiceUnavailable(f"The {service} service answered unexpectedly ({status}).", retry_after=5)


def catalog_products(*, product_ids: Iterable[int]) -> ProductLookup:
    """Current price, merchant and availability of ``product_ids`` from the catalog."""
    ids = sorted(set(product_ids))
    response = service_client().request(
        CATALOG, "GET", "/internal/v1/catalog/products", query={"ids": ",".join(map(str, ids))}
    )
    if response.status == 400:
        # The catalog refused the ids themselves: that is what the client sent, not an outage.
        raise ValidationError({"product_id": [f"The catalog refused these product ids: {','.join(map(str, ids))}."]})
    if response.status != 200:
        raise _unexpected(CATALOG, response.status)
    try:
        data = response.json()
        found = {
            int(item["id"]): ProductSnapshot(
                id=int(item["id"]),
                merchant_id=int(item["merchant_id"]),
                sku=str(item["sku"]),
                name=str(item["name"]),
                price=Decimal(str(item["price"])),
                currency=str(item["currency"]),
                is_active=bool(item["is_active"]),
                available=int(item.get("available", 0)),
            )
            for item in data["results"]
        }
        missing = frozenset(int(pid) for pid in data.get("missing", []))
    except (KeyError, TypeError, ValueError, InvalidOperation) as exc:
        raise ServiceUnavailable("The catalog service answered with an unreadable document.") from exc
    # An id the catalog neither returned nor listed as missing is unknown all the same.
    missing |= frozenset(pid for pid in ids if pid not in found)
    return ProductLookup(found=found, missing=missing)


def catalog_merchant_ids_of(*, user_id: str) -> frozenset[int]:
    """The merchants ``user_id`` belongs to, cached for ``MERCHANT_IDS_CACHE_SECONDS``."""
    key = f"orders:merchant-ids:{user_id}"
    cached = cache.get(key)
    if cached is not None:
        return frozenset(cached)
    response = service_client().request(CATALOG, "GET", f"/internal/v1/catalog/users/{user_id}/merchants")
    if response.status == 404:
        merchant_ids: list[int] = []
    elif response.status == 200:
        try:
            merchant_ids = [int(mid) for mid in response.json()["merchant_ids"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise ServiceUnavailable("The catalog service answered with an unreadable document.") from exc
    else:
        raise _unexpected(CATALOG, response.status)
    cache.set(key, merchant_ids, timeout=settings.MERCHANT_IDS_CACHE_SECONDS)
    return frozenset(merchant_ids)


def profiles_default_shipping_address(*, user_id: str) -> dict[str, Any] | None:
    """The customer's default shipping address (its address fields only), or None when none."""
    response = service_client().request(PROFILES, "GET", f"/internal/v1/profiles/{user_id}/default-shipping-address")
    if response.status == 404:
        return None
    if response.status != 200:
        raise _unexpected(PROFILES, response.status)
    data = response.json() or {}
    return {name: str(data.get(name) or "") for name in ADDRESS_FIELDS}


@dataclass(frozen=True)
class ReservationState:
    """The catalog's reservation of one order, as the reconciliation compares it."""

    order_id: str
    status: str  # held | committed | released | rejected
    release_reason: str


def _reservations(query: dict[str, str]) -> list[ReservationState]:
    response = service_client().request(CATALOG, "GET", "/internal/v1/catalog/reservations", query=query)
    if response.status != 200:
        raise _unexpected(CATALOG, response.status)
    try:
        return [
            ReservationState(
                order_id=str(item["order_id"]), status=str(item["status"]), release_reason=str(item["release_reason"])
            )
            for item in response.json()["results"]
        ]
    except (KeyError, TypeError, ValueError) as exc:
        raise ServiceUnavailable("The catalog service answered with an unreadable document.") from exc


def catalog_reservations(*, order_ids: Iterable[str]) -> dict[str, ReservationState]:
    """The catalog's reservations of ``order_ids`` (an order it has none for is absent)."""
    ids = sorted(set(order_ids))
    if not ids:
        return {}
    return {state.order_id: state for state in _reservations({"order_ids": ",".join(ids)})}


def catalog_reservations_held_idle(*, idle_seconds: int) -> list[ReservationState]:
    """Reservations the catalog has held, untouched, for at least ``idle_seconds``."""
    return _reservations({"held_idle_seconds": str(idle_seconds)})
