"""The consistency metrics (names fixed in the coordination board; dashboards and alerts use them)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

SAGA_REDRIVES = Counter(
    "bazaar_saga_redrives_total",
    "Messages of a flow step sent again because their consumer had not acknowledged them in time.",
    ["step"],
)
SAGA_SETTLED = Counter(
    "bazaar_saga_settled_total",
    "Flow steps given up after their last attempt and settled safely (and flagged for support).",
    ["step", "outcome"],
)
SAGA_OVERDUE = Gauge(
    "bazaar_saga_overdue_steps",
    "Messages whose acknowledgement is overdue now, per flow step (refreshed by the relay).",
    ["step"],
)
RECONCILIATION_REPAIRS = Counter(
    "bazaar_reconciliation_repairs_total",
    "Disagreements between orders and reservations that the periodic reconciliation repaired.",
    ["kind"],
)
DEAD_LETTERS = Counter(
    "bazaar_dead_letters_total",
    "Received messages that did not match their contract and were put aside for support.",
    ["task"],
)
CONSUMER_RETRIES = Counter(
    "bazaar_consumer_retries_total",
    "Message handlers retried after a transient failure (database or broker unavailable).",
    ["task"],
)
