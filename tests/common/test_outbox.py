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

from bazaar_common.contracts import Route
from bazaar_common.outbox.models import OutboxMessage, ProcessedMessage
from bazaar_common.outbox.services import message_consume_once, outbox_enqueue, outbox_publish, publisher

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def route():
    return Route("tests.noop", f"bazaar-test-{uuid.uuid4().hex[:8]}")


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
            outbox_enqueue(routes=route, payload={"order_id": "o-1"})
            raise RuntimeError("the change failed")

    with pytest.raises(RuntimeError):
        change_that_fails()

    assert OutboxMessage.objects.count() == 0
    assert broker.llen(route.queue) == 0


def test_committed_message_is_published_to_the_receivers_queue(route, broker):
    with transaction.atomic():
        (message,) = outbox_enqueue(routes=route, payload={"order_id": "o-2"})

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
        (message,) = outbox_enqueue(routes=route, payload={"order_id": "o-3"})
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
        messages = outbox_enqueue(routes=routes, payload={"user_id": "u-1"})

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
