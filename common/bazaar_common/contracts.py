"""Message contracts between services: task names, queues and payload shapes.

A service sends a message by task *name* onto the receiving service's queue; it never imports the
receiver's code. Every task takes exactly two keyword arguments: ``message_id`` (the outbox row's
id, used by the consumer for idempotency) and ``payload`` (a dict made from one of the data classes
below with :func:`dataclasses.asdict`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# One queue per consuming service. A worker consumes only its own service's queue.
QUEUE_AUTH = "auth"
QUEUE_CATALOG = "catalog"
QUEUE_ORDERS = "orders"
QUEUE_PROFILES = "profiles"


@dataclass(frozen=True)
class Route:
    """Where a message goes: the consumer's task name and queue."""

    task: str
    queue: str


# --- Order saga: commands to the catalog ----------------------------------------------------------
RESERVE_STOCK = Route("catalog.reserve_stock", QUEUE_CATALOG)
COMMIT_RESERVATION = Route("catalog.commit_reservation", QUEUE_CATALOG)
RELEASE_RESERVATION = Route("catalog.release_reservation", QUEUE_CATALOG)

# --- Order saga: the catalog's replies ------------------------------------------------------------
STOCK_RESERVED = Route("orders.stock_reserved", QUEUE_ORDERS)
STOCK_REJECTED = Route("orders.stock_rejected", QUEUE_ORDERS)

# --- Identity events (fan out: one route per subscriber) ------------------------------------------
USER_REGISTERED = (Route("profiles.user_registered", QUEUE_PROFILES),)
# Sent by the profile service, which erases its own data in the same transaction.
USER_ERASED = (
    Route("auth.user_erased", QUEUE_AUTH),
    Route("orders.user_erased", QUEUE_ORDERS),
)


@dataclass(frozen=True)
class StockLine:
    product_id: int
    quantity: int


@dataclass(frozen=True)
class ReserveStock:
    """Reserve every line for ``order_id`` or none of them."""

    order_id: str
    lines: list[dict[str, int]]
    expires_in_seconds: int = 900


@dataclass(frozen=True)
class CommitReservation:
    """The order was paid: the held stock leaves the warehouse."""

    order_id: str


@dataclass(frozen=True)
class ReleaseReservation:
    """The order was cancelled, rejected or expired: give the held stock back."""

    order_id: str
    reason: str


@dataclass(frozen=True)
class StockReserved:
    order_id: str


@dataclass(frozen=True)
class StockRejected:
    """``shortages``: ``[{"product_id", "requested", "available"}]`` (empty when not stock)."""

    order_id: str
    reason: str
    shortages: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class UserRegistered:
    user_id: str
    email: str


@dataclass(frozen=True)
class UserErased:
    user_id: str
