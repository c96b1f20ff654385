"""The payment-provider interface and the built-in simulated provider.

A provider charges with an idempotency key: asking twice with the same key charges once and
returns the first charge. That is what makes a retry after a timeout safe.

Test card tokens of the simulated provider (``PAYMENT_PROVIDER=simulated``, the default):

=============================  ===========================================================
``tok_success``                charged
``tok_decline``                declined (``card_declined``); nothing charged
``tok_insufficient_funds``     declined (``insufficient_funds``); nothing charged
``tok_timeout``                the provider does not answer; nothing charged
``tok_timeout_after_charge``   the provider charges, then the answer is lost (a timeout):
                               a retry with the same attempt returns that one charge
=============================  ===========================================================

Any other token is declined as ``invalid_token``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Protocol

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils.module_loading import import_string

from order_service.orders.models import SimulatedCharge


class PaymentTimeout(Exception):
    """The provider gave no answer: the charge may or may not have happened."""


@dataclass(frozen=True)
class ChargeResult:
    succeeded: bool
    reference: str = ""
    decline_reason: str = ""


class PaymentProvider(Protocol):
    name: str

    def charge(self, *, idempotency_key: str, amount: Decimal, currency: str, card_token: str) -> ChargeResult:
        """Charge once per ``idempotency_key``; raise :class:`PaymentTimeout` when unanswered."""

    def refund(self, *, reference: str, amount: Decimal) -> None:
        """Give ``amount`` of the charge ``reference`` back."""


DECLINES = {"tok_decline": "card_declined", "tok_insufficient_funds": "insufficient_funds"}
TEST_TOKENS = ("tok_success", *DECLINES, "tok_timeout", "tok_timeout_after_charge")


class SimulatedPaymentProvider:
    """A provider with real bookkeeping (:class:`SimulatedCharge`) and scripted card tokens."""

    name = "simulated"

    def charge(self, *, idempotency_key: str, amount: Decimal, currency: str, card_token: str) -> ChargeResult:
        existing = SimulatedCharge.objects.filter(idempotency_key=idempotency_key).first()
        if existing is not None:
            return ChargeResult(succeeded=True, reference=existing.reference)
        if card_token == "tok_timeout":
            raise PaymentTimeout("The simulated provider did not answer.")
        if card_token in DECLINES:
            return ChargeResult(succeeded=False, decline_reason=DECLINES[card_token])
        if card_token not in ("tok_success", "tok_timeout_after_charge"):
            return ChargeResult(succeeded=False, decline_reason="invalid_token")
        charge = self._record_charge(idempotency_key=idempotency_key, amount=amount, currency=currency)
        if card_token == "tok_timeout_after_charge":
            raise PaymentTimeout("The simulated provider charged but its answer was lost.")
        return ChargeResult(succeeded=True, reference=charge.reference)

    @staticmethod
    def _record_charge(*, idempotency_key: str, amount: Decimal, currency: str) -> SimulatedCharge:
        # Its own transaction: the provider's books do not roll back with ours.
        try:
            with transaction.atomic():
                return SimulatedCharge.objects.create(
                    idempotency_key=idempotency_key,
                    reference=f"ch_{uuid.uuid4().hex[:24]}",
                    amount=amount,
                    currency=currency,
                )
        except IntegrityError:  # a concurrent call with the same key charged first
            return SimulatedCharge.objects.get(idempotency_key=idempotency_key)

    def refund(self, *, reference: str, amount: Decimal) -> None:
        updated = SimulatedCharge.objects.filter(reference=reference, amount__gte=F("refunded_amount") + amount).update(
            refunded_amount=F("refunded_amount") + amount
        )
        if not updated:
            raise ValueError(f"Charge {reference} cannot be refunded {amount}.")


@lru_cache(maxsize=1)
def _provider_class(path: str) -> type:
    return import_string(path)


def payment_provider() -> PaymentProvider:
    """The configured provider (``PAYMENT_PROVIDER_CLASS``, the simulated one by default)."""
    return _provider_class(settings.PAYMENT_PROVIDER_CLASS)()
