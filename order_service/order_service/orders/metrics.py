"""Order metrics, counted on commit.

- ``bazaar_order_transitions_total{from_state,to_state}``: both labels are order statuses (a fixed
  set), so the series are bounded by the state machine.
- ``bazaar_order_hold_expiry_decisions_total{decision}``: the answers to the catalog's questions
  about overdue holds (``commit``, ``release``, ``keep``).
"""

from __future__ import annotations

from django.db import transaction
from prometheus_client import Counter

TRANSITIONS = Counter(
    "bazaar_order_transitions_total", "Order status changes that committed.", ["from_state", "to_state"]
)


def count_transition(from_state: str, to_state: str) -> None:
    transaction.on_commit(lambda: TRANSITIONS.labels(from_state, to_state).inc())


HOLD_EXPIRY_DECISIONS = Counter(
    "bazaar_order_hold_expiry_decisions_total", "Answers to the catalog about overdue holds.", ["decision"]
)


def count_hold_expiry_decision(decision: str) -> None:
    transaction.on_commit(lambda: HOLD_EXPIRY_DECISIONS.labels(decision).inc())
