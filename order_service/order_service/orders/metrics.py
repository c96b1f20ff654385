"""Order metrics: ``bazaar_order_transitions_total{from_state,to_state}``, counted on commit.

Both labels are order statuses (a fixed set), so the series are bounded by the state machine.
"""

from __future__ import annotations

from django.db import transaction
from prometheus_client import Counter

TRANSITIONS = Counter(
    "bazaar_order_transitions_total", "Order status changes that committed.", ["from_state", "to_state"]
)


def count_transition(from_state: str, to_state: str) -> None:
    transaction.on_commit(lambda: TRANSITIONS.labels(from_state, to_state).inc())
