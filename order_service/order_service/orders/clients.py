"""What the order service asks other services over HTTP, as typed plain data.

Every call goes through :func:`bazaar_common.http.service_client` (discovery, service token,
timeouts, breakers). A service that is down surfaces as ``ServiceUnavailable``/``GatewayTimeout``
(503/504 with ``Retry-After``); an answer we cannot understand is treated the same way, because the
request cannot be completed correctly without it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache

from bazaar_common.contracts import http as internal
from bazaar_common.contracts.http import ProductSnapshot, ReservationState, ShippingAddress
from bazaar_common.domain import InvalidInput
from bazaar_common.errors import ServiceUnavailable
from bazaar_common.http import service_client

__all__ = [
    "ProductLookup",
    "ProductSnapshot",
    "ReservationState",
    "ShippingAddress",
    "catalog_merchant_ids_of",
    "catalog_products",
    "catalog_reservations",
    "catalog_reservations_held_idle",
    "profiles_default_shipping_address",
]


@dataclass(frozen=True)
class ProductLookup:
    found: dict[int, ProductSnapshot]
    missing: frozenset[int]


def _unexpected(service: str, status: int) -> ServiceUnavailable:
    return ServiceUnavailable(f"The {service} service answered unexpectedly ({status}).", retry_after=5)


def catalog_products(*, product_ids: Iterable[int]) -> ProductLookup:
    """Current price, merchant and availability of ``product_ids`` from the catalog."""
    ids = sorted(set(product_ids))
    found: dict[int, ProductSnapshot] = {}
    missing: set[int] = set()
    # The catalog answers at most MAX_IDS products per call.
    for start in range(0, len(ids), internal.MAX_IDS):
        answer = _catalog_products(ids[start : start + internal.MAX_IDS])
        found.update((product.id, product) for product in answer.results)
        missing.update(answer.missing)
    # An id the catalog neither returned nor listed as missing is unknown all the same.
    missing.update(pid for pid in ids if pid not in found)
    return ProductLookup(found=found, missing=frozenset(missing))


def _catalog_products(ids: list[int]) -> internal.CatalogProducts:
    call = internal.CATALOG_PRODUCTS
    response = service_client().request(
        call.service, call.method, call.path, query=internal.ProductsQuery(ids=ids).to_query()
    )
    if response.status == 400:
        # The catalog refused the ids themselves: that is what the client sent, not an outage.
        raise InvalidInput({"product_id": [f"The catalog refused these product ids: {','.join(map(str, ids))}."]})
    if response.status != 200:
        raise _unexpected(call.service, response.status)
    return response.parse(internal.CatalogProducts, service=call.service)


def catalog_merchant_ids_of(*, user_id: str) -> frozenset[int]:
    """The merchants ``user_id`` belongs to, cached for ``MERCHANT_IDS_CACHE_SECONDS``."""
    key = f"orders:merchant-ids:{user_id}"
    cached = cache.get(key)
    if cached is not None:
        return frozenset(cached)
    call = internal.CATALOG_USER_MERCHANTS
    response = service_client().request(call.service, call.method, call.url(user_id=user_id))
    if response.status == 404:
        merchant_ids: list[int] = []
    elif response.status == 200:
        merchant_ids = response.parse(internal.UserMerchants, service=call.service).merchant_ids
    else:
        raise _unexpected(call.service, response.status)
    cache.set(key, merchant_ids, timeout=settings.MERCHANT_IDS_CACHE_SECONDS)
    return frozenset(merchant_ids)


def profiles_default_shipping_address(*, user_id: str) -> ShippingAddress | None:
    """The customer's default shipping address (its address fields only), or None when none."""
    call = internal.PROFILES_DEFAULT_SHIPPING_ADDRESS
    response = service_client().request(call.service, call.method, call.url(user_id=user_id))
    if response.status == 404:
        return None
    if response.status != 200:
        raise _unexpected(call.service, response.status)
    return response.parse(internal.DefaultShippingAddress, service=call.service).address()


def _reservations(query: internal.ReservationsQuery) -> list[ReservationState]:
    call = internal.CATALOG_RESERVATIONS
    response = service_client().request(call.service, call.method, call.path, query=query.to_query())
    if response.status != 200:
        raise _unexpected(call.service, response.status)
    return response.parse(internal.Reservations, service=call.service).results


def catalog_reservations(*, order_ids: Iterable[str]) -> dict[str, ReservationState]:
    """The catalog's reservations of ``order_ids`` (an order it has none for is absent)."""
    ids = sorted(set(order_ids))
    if not ids:
        return {}
    states: dict[str, ReservationState] = {}
    # The catalog answers at most MAX_IDS orders per call.
    for start in range(0, len(ids), internal.MAX_IDS):
        chunk = internal.ReservationsQuery(order_ids=ids[start : start + internal.MAX_IDS])
        states.update((state.order_id, state) for state in _reservations(chunk))
    return states


def catalog_reservations_held_idle(*, idle_seconds: int) -> list[ReservationState]:
    """Reservations the catalog has held, untouched, for at least ``idle_seconds``."""
    return _reservations(internal.ReservationsQuery(held_idle_seconds=idle_seconds))
