"""The transactional outbox: messages exist only if their transaction commits, survive a broker
outage, and are consumed at most once in effect."""

from __future__ import annotations

import json
import threading
import uuid

import pytest
import redis
from celery import Celery, current_app
from django.conf import settings
from django.db import connection, transaction

from bazaar_common.contracts import Message, Route
from bazaar_common.outbox.models import OutboxMessage, ProcessedMessage
from bazaar_common.outbox.services import message_consume_once, outbox_enqueue, outbox_publish, publisher

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def route():
    return Route("tests.noop", f"bazaar-test-{uuid.uuid4().hex[:8]}")


def message_to(*routes: Route, **fields: str) -> Message:
    """A message of a contract made for the test, sent along ``routes``."""

    class Noop(Message):
        ROUTES = routes
        order_id: str = ""
        user_id: str = ""

    return Noop(**fields)


@pytest.fixture
def broker():
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    yield client
    client.close()


class _BrokerSwitch:
    """Points the current Celery app at a port where no broker listens, and back."""

    def __init__(self) -> None:
        self.live = current_app._get_current_object()

    def down(self) -> None:
        dead = Celery("dead", broker="redis://127.0.0.1:1/0", set_as_current=True)
        dead.conf.update(task_publish_retry=False, broker_transport_options={"socket_connect_timeout": 0.5})

    def up(self) -> None:
        self.live.set_current()


@pytest.fixture
def broker_switch():
    switch = _BrokerSwitch()
    yield switch
    switch.up()


def test_message_of_a_rolled_back_transaction_never_exists(route, broker):
    def change_that_fails():
        with transaction.atomic():
            outbox_enqueue(message_to(route, order_id="o-1"))
            raise RuntimeError("the change failed")

    with pytest.raises(RuntimeError):
        change_that_fails()

    assert OutboxMessage.objects.count() == 0
    assert broker.llen(route.queue) == 0


def test_committed_message_is_published_to_the_receivers_queue(route, broker):
    with transaction.atomic():
        (message,) = outbox_enqueue(message_to(route, order_id="o-2"))

    assert publisher.wait_idle(10)
    message.refresh_from_db()
    assert message.published_at is not None
    raw = broker.lpop(route.queue)
    envelope = json.loads(raw)
    assert envelope["headers"]["task"] == "tests.noop"
    assert envelope["headers"]["id"] == str(message.id)


def test_broker_outage_delays_the_message_and_the_relay_sends_it_later(route, broker, broker_switch):
    # Given the broker is down when the transaction commits
    broker_switch.down()
    with transaction.atomic():
        (message,) = outbox_enqueue(message_to(route, order_id="o-3"))
    assert publisher.wait_idle(10)

    # Then the message waits in the outbox, with the failure recorded
    message.refresh_from_db()
    assert message.published_at is None
    assert message.attempts == 1
    assert message.last_error != ""
    assert broker.llen(route.queue) == 0

    # When the broker is back, the relay publishes it
    broker_switch.up()
    assert outbox_publish() == 1
    message.refresh_from_db()
    assert message.published_at is not None
    assert broker.llen(route.queue) == 1


def test_fan_out_writes_one_message_per_route(broker):
    routes = (Route("tests.a", f"q-a-{uuid.uuid4().hex[:6]}"), Route("tests.b", f"q-b-{uuid.uuid4().hex[:6]}"))

    with transaction.atomic():
        messages = outbox_enqueue(message_to(*routes, user_id="u-1"))

    assert publisher.wait_idle(10)
    assert [m.task_name for m in messages] == ["tests.a", "tests.b"]
    assert broker.llen(routes[0].queue) == 1
    assert broker.llen(routes[1].queue) == 1


def test_a_redelivered_message_runs_its_handler_once():
    calls = []

    first = message_consume_once(message_id="m-1", task_name="tests.noop", handler=lambda: calls.append(1))
    second = message_consume_once(message_id="m-1", task_name="tests.noop", handler=lambda: calls.append(2))

    assert (first, second) == (True, False)
    assert calls == [1]
    assert ProcessedMessage.objects.filter(message_id="m-1").count() == 1


def test_a_failing_handler_leaves_the_message_unprocessed_so_a_retry_runs_it():
    def failing():
        raise ValueError("transient")

    with pytest.raises(ValueError):
        message_consume_once(message_id="m-2", task_name="tests.noop", handler=failing)

    assert not ProcessedMessage.objects.filter(message_id="m-2").exists()
    assert message_consume_once(message_id="m-2", task_name="tests.noop", handler=lambda: None) is True


@pytest.mark.postgres
def test_concurrent_deliveries_of_one_message_take_effect_once():
    assert connection.vendor == "postgresql"
    effects = []
    barrier = threading.Barrier(8)

    def deliver():
        from django.db import connections

        barrier.wait()
        try:
            message_consume_once(message_id="m-3", task_name="tests.noop", handler=lambda: effects.append(1))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=deliver) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert effects == [1]
    assert ProcessedMessage.objects.filter(message_id="m-3").count() == 1


def test_an_unacknowledged_message_is_sent_again_with_back_off_until_acknowledged(route, broker, settings):
    from datetime import timedelta

    from django.utils import timezone
    from prometheus_client import REGISTRY

    from bazaar_common.contracts import AckOutcome, MessageAck
    from bazaar_common.outbox.services import outbox_acknowledge, outbox_redrive

    settings.OUTBOX_ACK_TIMEOUT_SECONDS = 10
    with transaction.atomic():
        (message,) = outbox_enqueue(message_to(route, order_id="o-9"))
    assert publisher.wait_idle(10)
    message.refresh_from_db()
    first_due = message.ack_due_at
    assert first_due is not None
    assert outbox_redrive() == 0  # not due yet
    before = REGISTRY.get_sample_value("bazaar_saga_redrives_total", {"step": "tests.noop"}) or 0

    # When its deadline passes without an acknowledgement, it goes out again, the wait doubled
    OutboxMessage.objects.filter(pk=message.pk).update(ack_due_at=timezone.now() - timedelta(seconds=1))
    assert outbox_redrive() == 1
    message.refresh_from_db()
    assert message.attempts == 2
    assert timedelta(seconds=19) < message.ack_due_at - timezone.now() <= timedelta(seconds=20)
    assert broker.llen(route.queue) == 2
    assert REGISTRY.get_sample_value("bazaar_saga_redrives_total", {"step": "tests.noop"}) == before + 1

    # Once acknowledged, it is never sent again
    assert outbox_acknowledge(MessageAck(message_id=str(message.pk), task="tests.noop", outcome=AckOutcome.HANDLED))
    OutboxMessage.objects.filter(pk=message.pk).update(ack_due_at=None)
    message.refresh_from_db()
    assert (message.acked_at is not None, message.ack_outcome) == (True, "handled")
    assert outbox_redrive() == 0
    assert broker.llen(route.queue) == 2


def test_after_the_last_attempt_the_message_is_given_up_and_counted(route, broker, settings):
    from django.utils import timezone
    from prometheus_client import REGISTRY

    from bazaar_common.outbox.services import outbox_redrive

    settings.OUTBOX_MAX_ATTEMPTS = 1
    with transaction.atomic():
        (message,) = outbox_enqueue(message_to(route, order_id="o-10"))
    assert publisher.wait_idle(10)
    OutboxMessage.objects.filter(pk=message.pk).update(ack_due_at=timezone.now())
    labels = {"step": "tests.noop", "outcome": "flagged"}
    before = REGISTRY.get_sample_value("bazaar_saga_settled_total", labels) or 0

    assert outbox_redrive() == 1

    message.refresh_from_db()
    assert (message.gave_up_at is not None, message.ack_due_at, message.attempts) == (True, None, 1)
    assert broker.llen(route.queue) == 1
    assert REGISTRY.get_sample_value("bazaar_saga_settled_total", labels) == before + 1


def test_a_consumer_acknowledges_in_its_transaction_and_again_for_a_duplicate():
    first = message_consume_once(message_id="m-7", task_name="tests.noop", handler=lambda: None, reply_queue="orders")
    again = message_consume_once(message_id="m-7", task_name="tests.noop", handler=lambda: None, reply_queue="orders")

    assert (first, again) == (True, False)
    acks = OutboxMessage.objects.filter(task_name="outbox.ack").order_by("created_at")
    assert [(a.queue, a.payload["outcome"], a.payload["message_id"]) for a in acks] == [
        ("orders", "handled", "m-7"),
        ("orders", "duplicate", "m-7"),
    ]
    assert all(a.ack_due_at is None for a in acks)  # acknowledgements are not acknowledged


def test_a_consumer_retries_a_transient_database_failure_instead_of_dropping_the_message():
    from django.db import OperationalError

    from bazaar_common.outbox.consumers import consumer

    calls = []

    class Flaky(Message):
        ROUTES = (Route("tests.flaky", "tests"),)
        order_id: str

    @consumer(Flaky, retry_backoff=False, default_retry_delay=0)
    def flaky(message: Flaky) -> None:
        calls.append(message.order_id)
        if len(calls) < 3:
            raise OperationalError("the database system is starting up")

    result = flaky.apply(kwargs={"message_id": "m-flaky", "payload": Flaky(order_id="o-1").to_payload()})

    assert result.successful()
    assert calls == ["o-1"] * 3
    assert ProcessedMessage.objects.filter(message_id="m-flaky").count() == 1


def test_a_malformed_payload_is_dead_lettered_counted_and_not_raised():
    from prometheus_client import REGISTRY

    from bazaar_common.outbox.consumers import consumer
    from bazaar_common.outbox.models import DeadLetter

    class Strict(Message):
        ROUTES = (Route("tests.strict", "tests"),)
        quantity: int

    @consumer(Strict)
    def strict(message: Strict) -> None:
        raise AssertionError("never called with a bad payload")

    before = REGISTRY.get_sample_value("bazaar_dead_letters_total", {"task": "tests.strict"}) or 0
    result = strict.apply(kwargs={"message_id": "m-poison", "payload": {"quantity": "two"}})

    assert (result.successful(), result.result) == (True, False)
    letter = DeadLetter.objects.get(message_id="m-poison")
    assert (letter.task_name, letter.payload, letter.reason) == (
        "tests.strict",
        {"quantity": "two"},
        "quantity: Input should be a valid integer",
    )
    assert REGISTRY.get_sample_value("bazaar_dead_letters_total", {"task": "tests.strict"}) == before + 1


def test_acknowledgements_for_one_queue_go_out_as_one_broker_message_and_settle_every_row(route, broker):
    # Given three messages of ours awaiting their consumer's acknowledgement
    from bazaar_common.outbox.tasks import message_ack

    sent = []
    for number in range(3):
        with transaction.atomic():
            sent.extend(outbox_enqueue(message_to(route, order_id=f"o-ack-{number}")))
    assert publisher.wait_idle(10)
    assert all(row.ack_due_at is not None for row in OutboxMessage.objects.filter(pk__in=[r.pk for r in sent]))
    # ... and their consumer's acknowledgements, written as one outbox row each
    reply_queue = f"bazaar-test-acks-{uuid.uuid4().hex[:8]}"
    for row in sent:
        message_consume_once(
            message_id=str(row.pk), task_name=route.task, handler=lambda: None, reply_queue=reply_queue
        )
    # (taken back from the broker and the outbox's record, as if the publisher had not run yet)
    assert publisher.wait_idle(10)
    broker.delete(reply_queue)
    ack_rows = list(OutboxMessage.objects.filter(task_name="outbox.ack", queue=reply_queue))
    OutboxMessage.objects.filter(pk__in=[a.pk for a in ack_rows]).update(published_at=None)

    # When one publisher round takes them all
    assert outbox_publish(ids=[a.pk for a in ack_rows]) == 3

    # Then one broker message carries the three, and every ack row is marked published
    assert broker.llen(reply_queue) == 1
    envelope = json.loads(broker.lpop(reply_queue))
    assert envelope["headers"]["task"] == "outbox.ack"
    args, kwargs, _ = json.loads(__import__("base64").b64decode(envelope["body"]))
    carried = [kwargs["payload"]["message_id"]] + [item["payload"]["message_id"] for item in kwargs["batch"]]
    assert sorted(carried) == sorted(str(row.pk) for row in sent)
    assert OutboxMessage.objects.filter(pk__in=[a.pk for a in ack_rows], published_at__isnull=True).count() == 0

    # And the task on our side settles all three at once, and changes nothing when it runs again
    assert message_ack(**kwargs) == 3
    settled = OutboxMessage.objects.filter(pk__in=[r.pk for r in sent])
    assert [(row.ack_outcome, row.ack_due_at) for row in settled] == [("handled", None)] * 3
    assert message_ack(**kwargs) == 0


def test_a_malformed_acknowledgement_in_a_batch_is_dead_lettered_and_the_rest_settle(route):
    from bazaar_common.contracts import AckOutcome, MessageAck
    from bazaar_common.outbox.models import DeadLetter
    from bazaar_common.outbox.tasks import message_ack

    with transaction.atomic():
        (row,) = outbox_enqueue(message_to(route, order_id="o-ack-bad"))
    assert publisher.wait_idle(10)
    good = MessageAck(message_id=str(row.pk), task=route.task, outcome=AckOutcome.HANDLED).to_payload()

    settled = message_ack(
        message_id="ack-1", payload=good, batch=[{"message_id": "ack-2", "payload": {"message_id": ""}}]
    )

    assert settled == 1
    row.refresh_from_db()
    assert (row.ack_outcome, row.ack_due_at) == ("handled", None)
    letter = DeadLetter.objects.get(message_id="ack-2")
    assert (letter.task_name, letter.payload) == ("outbox.ack", {"message_id": ""})


def test_the_publisher_sends_the_messages_of_many_transactions_in_one_round(route, broker):
    # Given the publisher thread busy (it cannot start a round) while ten transactions commit
    from bazaar_common.outbox import services

    rounds = []
    real_publish = services.outbox_publish
    gate = threading.Event()

    def counting_publish(**kwargs):
        gate.wait(10)
        rounds.append(len(kwargs["ids"]))
        return real_publish(**kwargs)

    services.outbox_publish = counting_publish
    try:
        for number in range(10):
            with transaction.atomic():
                outbox_enqueue(message_to(route, order_id=f"o-batch-{number}"))
        gate.set()
        assert publisher.wait_idle(10)
    finally:
        services.outbox_publish = real_publish

    # Then every message went out, in at most two rounds (the first may have started early)
    assert broker.llen(route.queue) == 10
    assert sum(rounds) == 10
    assert len(rounds) <= 2
    assert OutboxMessage.objects.filter(published_at__isnull=True).count() == 0
