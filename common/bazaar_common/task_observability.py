"""Observability of Celery workers: request id, trace context, metrics, Sentry.

* Every task runs with the request id of the HTTP request that caused it (the outbox stores it in
  the message headers), so its log lines carry it, and so do the messages it sends in turn.
* The trace context travels the same way (``traceparent`` header); the Celery instrumentation
  continues the trace in the task's span (see :mod:`bazaar_common.observability`).
* ``bazaar_celery_tasks_total{task,outcome}`` and ``bazaar_celery_task_duration_seconds{task}``.
* The worker's main process serves ``METRICS_PORT``: the pool processes' samples added up, plus
  what is read once per scrape here — the outbox backlog and the depth of the worker's queues.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

from celery.signals import task_postrun, task_prerun
from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily

from bazaar_common.observability import tag_span_with_request_id
from bazaar_common.request_id import current_request_id

logger = logging.getLogger(__name__)

TASKS = Counter("bazaar_celery_tasks_total", "Celery tasks run, by outcome.", ["task", "outcome"])
TASK_DURATION = Histogram(
    "bazaar_celery_task_duration_seconds",
    "Time a Celery task took to run.",
    ["task"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
_running: dict[str, tuple[float, Any]] = {}


def task_request_id(request: Any) -> str | None:
    """The request id a message carries (a custom header: Celery puts those on the request)."""
    value = getattr(request, "request_id", None)
    if value is None:
        value = (getattr(request, "headers", None) or {}).get("request_id")
    return value if isinstance(value, str) and value else None


@task_prerun.connect
def _task_started(task_id: str | None = None, task: Any = None, **kwargs: Any) -> None:
    if task_id is None or task is None:
        return
    token = current_request_id.set(task_request_id(task.request))
    _running[task_id] = (time.perf_counter(), token)


@task_postrun.connect
def _task_finished(task_id: str | None = None, task: Any = None, state: str | None = None, **kwargs: Any) -> None:
    started = _running.pop(task_id or "", None)
    if task is None:
        return
    TASKS.labels(task.name, (state or "unknown").lower()).inc()
    if started is None:
        return
    began, token = started
    request_id = current_request_id.get()
    if request_id:
        # The task's span is still current here (the Celery instrumentation's postrun handler,
        # connected after this one, ends it).
        tag_span_with_request_id(request_id)
    seconds = time.perf_counter() - began
    TASK_DURATION.labels(task.name).observe(seconds)
    # Logged while the task's request id is still current: the line joins the request's others.
    logger.info(
        "task finished",
        extra={"task": task.name, "outcome": (state or "unknown").lower(), "duration_ms": round(seconds * 1000, 2)},
    )
    try:
        current_request_id.reset(token)
    except ValueError:  # pragma: no cover - set in another context (eager mode)
        current_request_id.set(None)


class OutboxBacklogCollector:
    """``bazaar_outbox_unpublished_messages`` and ``bazaar_outbox_oldest_unpublished_age_seconds``,
    read from this service's database at scrape time (one indexed query)."""

    def __init__(self, service: str) -> None:
        self.service = service

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from django.db import connection
        from django.db.models import Count, Min
        from django.utils import timezone

        from bazaar_common.outbox.models import OutboxMessage

        try:
            found = OutboxMessage.objects.filter(published_at__isnull=True).aggregate(
                count=Count("id"), oldest=Min("created_at")
            )
        except Exception as exc:  # the database is away: no sample rather than a wrong one
            logger.warning("outbox backlog not measured", extra={"error": str(exc)})
            return
        finally:
            connection.close()  # the scrape thread keeps no connection between scrapes
        age = (timezone.now() - found["oldest"]).total_seconds() if found["oldest"] else 0.0
        unpublished = GaugeMetricFamily(
            "bazaar_outbox_unpublished_messages", "Outbox messages not yet published to the broker.", labels=[]
        )
        unpublished.add_metric([], found["count"])
        oldest = GaugeMetricFamily(
            "bazaar_outbox_oldest_unpublished_age_seconds",
            "Age of the oldest unpublished outbox message (0 when none).",
            labels=[],
        )
        oldest.add_metric([], max(age, 0.0))
        yield unpublished
        yield oldest


class QueueDepthCollector:
    """``bazaar_queue_depth_messages{queue}``: messages waiting in the broker for these queues.

    Measured by a thread of its own every ``interval_seconds``, never by the scrape: a broker that
    is away or hung (the client's connection retries alone take seconds) must not hold the scrape
    past its timeout, which would lose every other metric of the process, the outbox backlog
    included, just when it matters. A scrape reports the last measurement while it is fresh
    (younger than ``max_age_seconds``); with none, no sample (the queue is not known to be empty).
    """

    def __init__(
        self, app: Any, queues: Iterable[str], *, interval_seconds: float = 2.0, max_age_seconds: float = 10.0
    ) -> None:
        self.app = app
        self.queues = list(queues)
        self.interval_seconds = interval_seconds
        self.max_age_seconds = max_age_seconds
        self._last: tuple[float, dict[str, int]] | None = None  # (monotonic time, depth per queue)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        self.start()
        last = self._last
        if last is None or time.monotonic() - last[0] > self.max_age_seconds:
            return
        family = GaugeMetricFamily("bazaar_queue_depth_messages", "Messages waiting in a queue.", labels=["queue"])
        for queue in self.queues:
            family.add_metric([queue], last[1][queue])
        yield family

    def start(self) -> None:
        """Start measuring (the first scrape does it, in the process that serves the metrics)."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="queue-depth", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            depths = self.measure()
            if depths is not None:
                self._last = (time.monotonic(), depths)
            time.sleep(self.interval_seconds)

    def measure(self) -> dict[str, int] | None:
        """The depth of each queue now, or None when the broker does not answer."""
        from kombu.exceptions import ChannelError

        depths: dict[str, int] = {}
        try:
            with self.app.connection_for_read() as conn:
                conn.ensure_connection(max_retries=0)
                channel = conn.default_channel
                for queue in self.queues:
                    try:
                        depths[queue] = channel.queue_declare(queue=queue, passive=True).message_count
                    except ChannelError:  # not declared yet, or (Redis) empty: nothing waits
                        depths[queue] = 0
                        channel = conn.channel()
        except Exception as exc:  # broker away: no new measurement
            logger.warning("queue depth not measured", extra={"error": str(exc)})
            return None
        return depths


def start_worker_observability(service: str, *, queues: Iterable[str]) -> None:
    from celery import current_app

    from bazaar_common.metrics import start_metrics_server
    from bazaar_common.observability import init_observability

    init_observability(service)
    start_metrics_server([OutboxBacklogCollector(service), QueueDepthCollector(current_app, queues)])
