"""Message contracts between services: every Celery message the platform sends, as a typed class.

A service sends a message by task *name* onto the receiving service's queue; it never imports the
receiver's code. Every task takes exactly two keyword arguments: ``message_id`` (the outbox row's
id, used by the consumer for idempotency and in its acknowledgement) and ``payload`` (the JSON of
one of the classes below, made by :meth:`Message.to_payload`).

Producers build messages only from these classes (``outbox_enqueue(message)`` takes nothing else);
consumers parse the payload back with :meth:`Message.parse` (the ``consumer`` decorator does it),
and a payload that does not parse goes to the dead letters instead of raising in the worker.

Why pydantic rather than validated dataclasses: a consumer must refuse a malformed payload as
data (wrong type, missing field, unknown reason code, a bool where an int belongs), with the
field named in the dead letter, and both sides must share the same enums. pydantic does this in
strict mode with exact error locations and JSON-mode dumping of enums, which hand-written
``__post_init__`` checks would re-implement less completely for every class.

Versions: each payload carries ``v``. A consumer accepts its class's ``VERSION`` and the one
before (``VERSION - 1``; a payload without ``v`` is version 1, what producers sent before ``v``
existed), so a rolling deploy never dead-letters messages still in flight. A class whose shape
changed upgrades an old payload in :meth:`Message.upgrade`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError

__all__ = [
    "QUEUE_AUTH",
    "QUEUE_CATALOG",
    "QUEUE_ORDERS",
    "QUEUE_PROFILES",
    "SAGA_MESSAGES",
    "AckOutcome",
    "CommitOutcome",
    "CommitReservation",
    "HoldExpiring",
    "MalformedMessage",
    "Message",
    "MessageAck",
    "PasswordResetMail",
    "RejectReason",
    "SessionsRevoked",
    "ReleaseOutcome",
    "ReleaseReservation",
    "ReserveStock",
    "Route",
    "Shortage",
    "StockCommitted",
    "StockLine",
    "StockRejected",
    "StockReleased",
    "StockReserved",
    "UserErased",
    "UserRegistered",
    "message_class_for",
]

# One queue per consuming service. A worker consumes only its own service's queue.
QUEUE_AUTH = "auth"
QUEUE_CATALOG = "catalog"
QUEUE_ORDERS = "orders"
QUEUE_PROFILES = "profiles"

OrderId = Annotated[str, Field(min_length=1, max_length=64)]
UserId = Annotated[str, Field(min_length=1, max_length=64)]


@dataclass(frozen=True)
class Route:
    """Where a message goes: the consumer's task name and queue."""

    task: str
    queue: str


class MalformedMessage(ValueError):
    """A payload that is not a valid message of its class (the reason names the fields)."""


class Message(BaseModel):
    """Base of every message: routes, version and the step of the flow it belongs to.

    ``STEP`` names the flow step in metrics (``bazaar_saga_redrives_total{step}``) and in the
    support flags set when a message is never acknowledged.
    """

    model_config = ConfigDict(frozen=True, strict=True, extra="ignore")

    ROUTES: ClassVar[tuple[Route, ...]] = ()
    VERSION: ClassVar[int] = 1
    STEP: ClassVar[str] = ""
    # Acknowledgements are not acknowledged themselves (a lost ack makes the sender re-send the
    # original, and the consumer acknowledges its duplicate again).
    ACKNOWLEDGED: ClassVar[bool] = True

    def to_payload(self) -> dict[str, Any]:
        return {"v": self.VERSION, **self.model_dump(mode="json")}

    @classmethod
    def parse(cls, payload: Any) -> Self:
        """The message in ``payload`` (current or previous version), or :class:`MalformedMessage`."""
        if not isinstance(payload, dict):
            raise MalformedMessage(f"payload is {type(payload).__name__}, not an object")
        version = payload.get("v", 1)
        if isinstance(version, bool) or not isinstance(version, int) or version not in (cls.VERSION, cls.VERSION - 1):
            raise MalformedMessage(f"version {version!r} not accepted (accepts {cls.VERSION - 1} and {cls.VERSION})")
        body = {key: value for key, value in payload.items() if key != "v"}
        if version < cls.VERSION:
            body = cls.upgrade(body, version)
        try:
            # JSON mode: strict about types, but enums may arrive as their values (they do, as JSON).
            return cls.model_validate_json(_json(body))
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(payload)'}: {e['msg']}" for e in exc.errors())
            raise MalformedMessage(problems) from exc

    @classmethod
    def upgrade(cls, body: dict[str, Any], version: int) -> dict[str, Any]:
        """Turn a previous version's body into the current shape (unchanged by default)."""
        return body

    @classmethod
    def route_for(cls, queue: str) -> Route:
        return next(route for route in cls.ROUTES if route.queue == queue)


def _json(body: dict[str, Any]) -> str:
    import json

    return json.dumps(body)


# --- Reason codes, shared by the sender and the receiver ------------------------------------------


class RejectReason(enum.StrEnum):
    """Why the catalog holds no stock for an order."""

    OUT_OF_STOCK = "out_of_stock"
    UNAVAILABLE_PRODUCTS = "unavailable_products"
    INVALID_REQUEST = "invalid_request"
    # The catalog's own time limit released a hold (an expiry notice, not an answer to a reserve).
    # Catalogs since HoldExpiring ask the order service instead; still understood from older ones.
    EXPIRED = "expired"


class CommitOutcome(enum.StrEnum):
    COMMITTED = "committed"  # the held units left on-hand stock (also for a repeated commit)
    # The hold had expired before the commit came; the units were taken again and committed.
    RECOMMITTED = "recommitted"
    # Neither held nor re-takeable (sold out meanwhile, or never reserved): support must act.
    FAILED = "failed"


class ReleaseOutcome(enum.StrEnum):
    RELEASED = "released"  # held units went back to available stock
    RESTOCKED = "restocked"  # a committed order's units went back on hand
    NOTHING_HELD = "nothing_held"  # nothing was held (rejected, released before, or never reserved)


class AckOutcome(enum.StrEnum):
    HANDLED = "handled"
    DUPLICATE = "duplicate"
    DEAD_LETTERED = "dead_lettered"


# --- Order saga: commands to the catalog ----------------------------------------------------------


class StockLine(BaseModel):
    model_config = ConfigDict(frozen=True, strict=True)

    product_id: int = Field(ge=1)
    quantity: int = Field(ge=1)


class ReserveStock(Message):
    """Reserve every line for ``order_id`` or none of them (idempotent by order id)."""

    ROUTES = (Route("catalog.reserve_stock", QUEUE_CATALOG),)
    VERSION = 2
    STEP = "reserve"

    order_id: OrderId
    lines: list[StockLine] = Field(min_length=1)
    expires_in_seconds: int = Field(default=900, ge=1)


class CommitReservation(Message):
    """The order was paid: the held stock leaves the warehouse (answered by StockCommitted)."""

    ROUTES = (Route("catalog.commit_reservation", QUEUE_CATALOG),)
    VERSION = 2
    STEP = "commit"

    order_id: OrderId


class ReleaseReservation(Message):
    """The order was cancelled, rejected or expired: give the held stock back (StockReleased)."""

    ROUTES = (Route("catalog.release_reservation", QUEUE_CATALOG),)
    VERSION = 2
    STEP = "release"

    order_id: OrderId
    reason: str = Field(max_length=500)


# --- Order saga: the catalog's replies ------------------------------------------------------------


class Shortage(BaseModel):
    model_config = ConfigDict(frozen=True, strict=True)

    product_id: int
    requested: int
    available: int
    problem: str | None = None  # "unknown" / "inactive" for unavailable products


class StockReserved(Message):
    ROUTES = (Route("orders.stock_reserved", QUEUE_ORDERS),)
    VERSION = 2
    STEP = "reserve_reply"

    order_id: OrderId


class StockRejected(Message):
    """No stock is held for the order: refused (with ``shortages``) or an expired hold."""

    ROUTES = (Route("orders.stock_rejected", QUEUE_ORDERS),)
    VERSION = 2
    STEP = "reserve_reply"

    order_id: OrderId
    reason: RejectReason
    shortages: list[Shortage] = Field(default_factory=list)

    def to_payload(self) -> dict[str, Any]:
        payload = super().to_payload()
        # Optional keys stay out of a shortage that has none (the API shows shortages as sent).
        payload["shortages"] = [{k: v for k, v in s.items() if v is not None} for s in payload["shortages"]]
        return payload


class HoldExpiring(Message):
    """The catalog's hold of ``order_id`` ran out of time: may its units go back on sale?

    The catalog never releases a hold on its own clock, because only the order service knows
    whether the order is paid (its commit may be on the way). The order service decides under the
    order's row lock, so no payment can slip in between: a paid order's commit is sent again
    (CommitReservation), an order past its payment time is cancelled and its stock released
    (ReleaseReservation), an order still inside its payment window keeps the hold (its own expiry
    releases it when the window closes). The catalog asks again if the hold is still held later.
    """

    ROUTES = (Route("orders.hold_expiring", QUEUE_ORDERS),)
    STEP = "hold_expiry"

    order_id: OrderId


class StockCommitted(Message):
    """The catalog's acknowledgement of a commit, with what it did."""

    ROUTES = (Route("orders.stock_committed", QUEUE_ORDERS),)
    STEP = "commit_reply"

    order_id: OrderId
    outcome: CommitOutcome


class StockReleased(Message):
    """The catalog's acknowledgement of a release, with what it did."""

    ROUTES = (Route("orders.stock_released", QUEUE_ORDERS),)
    STEP = "release_reply"

    order_id: OrderId
    outcome: ReleaseOutcome


# --- Identity events (fan out: one route per subscriber) ------------------------------------------


class UserRegistered(Message):
    ROUTES = (Route("profiles.user_registered", QUEUE_PROFILES),)
    VERSION = 2
    STEP = "registration"

    user_id: UserId
    email: str = Field(max_length=254)


class UserErased(Message):
    """Sent by the profile service, which erases its own data in the same transaction."""

    ROUTES = (
        Route("auth.user_erased", QUEUE_AUTH),
        Route("orders.user_erased", QUEUE_ORDERS),
    )
    VERSION = 2
    STEP = "erasure"

    user_id: UserId


class SessionsRevoked(Message):
    """Auth to itself: every token of ``user_id`` issued before ``not_before_ms`` stops working.

    Auth writes the time to Redis right after the change commits; this message writes it again
    from auth's worker, so the revocation survives a Redis blip at that moment (see
    ``bazaar_common.auth.revocation``). ``reason``: deactivated | password_changed |
    password_reset | erased | signed_out_everywhere.
    """

    ROUTES = (Route("auth.sessions_revoked", QUEUE_AUTH),)
    STEP = "session_revocation"

    user_id: UserId
    not_before_ms: int = Field(ge=0)
    reason: str = Field(max_length=64)


class PasswordResetMail(Message):
    """Auth to itself: send the reset mail outside the request (and retry it if SMTP is down)."""

    ROUTES = (Route("auth.password_reset_mail_send", QUEUE_AUTH),)
    STEP = "password_reset_mail"

    user_id: UserId


# --- Delivery acknowledgements --------------------------------------------------------------------


class MessageAck(Message):
    """A consumer handled (or dead-lettered) ``message_id``: the sender stops re-sending it.

    Sent to the sender's own queue (``reply_queue`` in the message's headers), task ``outbox.ack``.
    """

    TASK: ClassVar[str] = "outbox.ack"
    ACKNOWLEDGED = False
    STEP = "ack"

    message_id: str = Field(min_length=1, max_length=64)
    task: str = Field(max_length=128)
    outcome: AckOutcome


SAGA_MESSAGES: tuple[type[Message], ...] = (
    ReserveStock,
    CommitReservation,
    ReleaseReservation,
    StockReserved,
    StockRejected,
    StockCommitted,
    StockReleased,
    HoldExpiring,
    UserRegistered,
    UserErased,
    PasswordResetMail,
    SessionsRevoked,
)


def message_class_for(task: str) -> type[Message] | None:
    """The contract of task ``task`` (None for a task that is not a message)."""
    if task == MessageAck.TASK:
        return MessageAck
    return next((cls for cls in SAGA_MESSAGES for route in cls.ROUTES if route.task == task), None)
