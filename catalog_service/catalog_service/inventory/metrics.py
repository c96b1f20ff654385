"""Inventory metrics: ``bazaar_stock_reservations_total{outcome,reason}``.

``outcome`` is ``reserved``, ``rejected`` or ``duplicate``; ``reason`` the reject reason code of the
message contract (empty unless rejected). Counted when the transaction that made it commits.
"""

from __future__ import annotations

from django.db import transaction
from prometheus_client import Counter

RESERVATIONS = Counter(
    "bazaar_stock_reservations_total", "Stock reservation requests handled, by outcome.", ["outcome", "reason"]
)


def count_reservation(outcome: str, reason: str = "") -> None:
    transaction.on_commit(lambda: RESERVATIONS.labels(outcome, reason).inc())
