"""Every message contract: what a producer builds parses on the consumer side, old versions are
still accepted, and a malformed payload is refused with the field named."""

from __future__ import annotations

import json

import pytest

from bazaar_common import contracts as c

SAMPLES: list[c.Message] = [
    c.ReserveStock(order_id="o-1", lines=[c.StockLine(product_id=3, quantity=2)], expires_in_seconds=600),
    c.CommitReservation(order_id="o-1"),
    c.ReleaseReservation(order_id="o-1", reason="Order cancelled."),
    c.StockReserved(order_id="o-1"),
    c.StockRejected(
        order_id="o-1",
        reason=c.RejectReason.OUT_OF_STOCK,
        shortages=[c.Shortage(product_id=3, requested=2, available=1)],
    ),
    c.StockCommitted(order_id="o-1", outcome=c.CommitOutcome.RECOMMITTED),
    c.StockReleased(order_id="o-1", outcome=c.ReleaseOutcome.RESTOCKED),
    c.HoldExpiring(order_id="o-1"),
    c.UserRegistered(user_id="u-1", email="ada@example.com"),
    c.UserErased(user_id="u-1"),
    c.PasswordResetMail(user_id="u-1"),
    c.SessionsRevoked(user_id="u-1", not_before_ms=1_764_000_000_000, reason="deactivated"),
    c.MessageAck(message_id="m-1", task="catalog.reserve_stock", outcome=c.AckOutcome.HANDLED),
]


def test_every_message_class_has_a_sample():
    assert {type(sample) for sample in SAMPLES} == {*c.SAGA_MESSAGES, c.MessageAck}


@pytest.mark.parametrize("message", SAMPLES, ids=lambda m: type(m).__name__)
def test_producer_output_parses_on_the_consumer_side(message):
    wire = json.loads(json.dumps(message.to_payload()))  # what travels through the broker

    assert wire["v"] == type(message).VERSION
    assert type(message).parse(wire) == message


@pytest.mark.parametrize("message", SAMPLES, ids=lambda m: type(m).__name__)
def test_the_previous_version_is_accepted_and_an_unknown_one_refused(message):
    cls = type(message)
    body = {k: v for k, v in message.to_payload().items() if k != "v"}

    if cls.VERSION > 1:
        assert cls.parse({"v": cls.VERSION - 1, **body}) == message
    assert cls.parse(body) == message  # no "v": version 1, what producers sent before versions
    with pytest.raises(c.MalformedMessage, match="version 99 not accepted"):
        cls.parse({"v": 99, **body})


def test_every_route_finds_its_contract():
    for cls in c.SAGA_MESSAGES:
        for route in cls.ROUTES:
            assert c.message_class_for(route.task) is cls
    assert c.message_class_for("outbox.ack") is c.MessageAck
    assert c.message_class_for("nobody.listens") is None


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"order_id": "o", "lines": []}, "lines: List should have at least 1 item after validation, not 0"),
        (
            {"order_id": "o", "lines": [{"product_id": "3", "quantity": 1}]},
            "lines.0.product_id: Input should be a valid integer",
        ),
        (
            {"order_id": "o", "lines": [{"product_id": True, "quantity": 1}]},
            "lines.0.product_id: Input should be a valid integer",
        ),
        ({"lines": [{"product_id": 3, "quantity": 1}]}, "order_id: Field required"),
        (
            {"order_id": "", "lines": [{"product_id": 3, "quantity": 1}]},
            "order_id: String should have at least 1 character",
        ),
        ("not an object", "payload is str, not an object"),
    ],
)
def test_a_malformed_reserve_is_refused_naming_the_field(payload, reason):
    with pytest.raises(c.MalformedMessage) as refused:
        c.ReserveStock.parse(payload)

    assert str(refused.value) == reason


def test_reason_codes_are_shared_enums():
    with pytest.raises(c.MalformedMessage, match="^reason: Input should be 'out_of_stock'"):
        c.StockRejected.parse({"v": 2, "order_id": "o", "reason": "insufficient_stock"})
    assert c.StockRejected.parse({"v": 2, "order_id": "o", "reason": "expired"}).reason is c.RejectReason.EXPIRED
