"""``bazaar_queue_depth_messages``: what a worker's scrape reports of its queues.

Against a real redis-server as the broker: the depth is the number of messages waiting. The
broker is asked by a thread of the collector's own, never by the scrape: a broker that accepts
connections and never answers leaves the scrape unaffected (it has no sample), so the rest of the
worker's metrics (the outbox backlog above all) still reach Prometheus during the outage; a
measurement older than its maximum age is not reported.
"""

from __future__ import annotations

import socket
import time
import uuid
from pathlib import Path

import pytest
from celery import Celery
from kombu import Connection, Exchange, Queue

from bazaar_common.task_observability import QueueDepthCollector
from bazaar_devtools.platform import EmbeddedRedis


@pytest.fixture
def broker(tmp_path: Path):
    redis = EmbeddedRedis(directory=tmp_path / "redis").start()
    yield redis
    redis.stop()


def _samples(collector: QueueDepthCollector) -> dict[str, float]:
    return {sample.labels["queue"]: sample.value for family in collector.collect() for sample in family.samples}


def _first_samples(collector: QueueDepthCollector, timeout: float = 30) -> dict[str, float]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := _samples(collector):
            return found
        time.sleep(0.05)
    return {}


def test_depth_is_the_number_of_messages_waiting_in_each_queue(broker):
    busy, idle = f"busy-{uuid.uuid4().hex[:6]}", f"idle-{uuid.uuid4().hex[:6]}"
    with Connection(broker.url) as connection:
        producer = connection.Producer()
        queue = Queue(busy, Exchange(busy), routing_key=busy)
        for number in range(3):
            producer.publish({"n": number}, exchange=queue.exchange, routing_key=busy, declare=[queue])
    collector = QueueDepthCollector(Celery(broker=broker.url), [busy, idle], interval_seconds=0.1)

    assert _first_samples(collector) == {busy: 3, idle: 0}


def test_a_stale_measurement_is_not_reported(broker):
    collector = QueueDepthCollector(Celery(broker=broker.url), ["catalog"], interval_seconds=0.1)
    assert _first_samples(collector) == {"catalog": 0}

    # When the broker stops answering, the last measurement ages past its maximum.
    broker.stop()
    collector.max_age_seconds = 0.5
    deadline = time.monotonic() + 30
    while _samples(collector) and time.monotonic() < deadline:
        time.sleep(0.1)

    assert _samples(collector) == {}


def test_a_hung_broker_gives_no_sample_and_the_scrape_does_not_ask_it():
    # Given a "broker" that accepts connections and never says a word.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        app = Celery(broker=f"redis://127.0.0.1:{listener.getsockname()[1]}/0")
        collector = QueueDepthCollector(app, ["catalog"], interval_seconds=0.1)

        # When it is scraped while the measuring thread waits for the broker.
        first = _samples(collector)
        time.sleep(0.5)
        second = _samples(collector)

        # Then neither scrape has a sample, and the scrapes left the waiting to that thread.
        assert first == {}
        assert second == {}
        assert collector._thread is not None
        assert collector._thread.is_alive()
