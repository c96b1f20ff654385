"""The Celery application of a service, configured so that no message is lost and no outage of
the broker stops a worker for good.

* ``task_acks_late`` + ``task_reject_on_worker_lost``: a worker killed mid-task leaves the message
  on the queue for another worker (consumers are idempotent, so a redelivery is harmless);
* ``worker_prefetch_multiplier=1``: a worker holds one unacknowledged message at a time;
* the broker connection is retried forever, every second (never "giving up after 100"); on
  connection loss the tasks still running are cancelled rather than acknowledged later on a
  channel whose connection is gone; their messages come back and run again, idempotently.
* Redis: when the connection drops while the worker holds unacknowledged messages, kombu's
  channel tries to put them back on the queue *through the connection that just failed*; with
  the pool already reset it dereferences the closed connection
  (``AttributeError: 'NoneType' object has no attribute 'hostname'``) and the whole worker exits
  ("Unrecoverable error"). :class:`RedisTransport` leaves them where they are instead — in
  Redis's unacked set, from which the restore sweep hands them out again.
* a liveness heartbeat (:class:`ConsumerHeartbeat`): a file touched every few seconds while the
  consumer is connected and consuming, which the Kubernetes liveness probe (:data:`HEARTBEAT_PROBE`)
  checks, so a worker whose consumer died or hung is restarted.

Two brokers, chosen by the scheme of ``CELERY_BROKER_URL`` (see ``docs/broker.md`` for the
figures behind the choice):

* **RabbitMQ** (``amqp://``, production): durable queues, persistent messages, publisher
  confirms; a killed worker's unacknowledged messages are redelivered as soon as its connection
  drops (AMQP heartbeats notice a silent peer within ``CELERY_BROKER_HEARTBEAT_SECONDS`` × 2).
* **Redis** (``redis://``, the embedded default): no connection-level redelivery. A message taken
  by a worker that dies is handed out again once it is older than the *visibility timeout*; the
  restore sweep looks for such messages every ``CELERY_UNACKED_RESTORE_SECONDS``. The timeout
  must be longer than any task (``CELERY_TASK_TIME_LIMIT_SECONDS`` enforces that) plus any
  countdown (a consumer's retry waits at most ``CELERY_RETRY_BACKOFF_MAX_SECONDS``), or Redis
  hands a running or waiting task to a second worker: 60 s by default against a 30 s hard limit
  and 30 s of back-off, so a killed worker's messages are back within about a minute.
  :func:`check_redis_visibility` refuses settings that break this rule.

Time limits (``CELERY_TASK_TIME_LIMIT_SECONDS``, the soft limit 5 s earlier): prefork's pool
enforces them by killing a child; the ``threads`` pool (what ``make up`` runs, to stay small) does
not, so :class:`ThreadPoolDeadlines` enforces them there the same way: the soft limit raises
``SoftTimeLimitExceeded`` in the task's thread, and a task still running at the hard limit ends
the worker process, whose launcher restarts it while the broker hands its messages out again.

Observability of workers (see :mod:`bazaar_common.task_observability`): Sentry and tracing are set
up in the worker too, every task runs with the request id and trace context of the HTTP request
that caused it, task counts and durations are metrics, and the worker's main process serves the
metrics of all its pool processes on ``METRICS_PORT``.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
from celery import Celery, bootsteps
from celery import states as celery_states
from celery.exceptions import SoftTimeLimitExceeded
from celery.fixups.django import DjangoFixup, DjangoWorkerFixup  # type: ignore[attr-defined]  # celery-types lacks it
from celery.signals import task_postrun, task_prerun, worker_init, worker_ready, worker_shutdown
from celery.worker.consumer import Consumer
from kombu.transport import redis as kombu_redis

from bazaar_common.metrics import prepare_multiprocess
from bazaar_common.settings import celery_broker_settings, celery_broker_url

logger = logging.getLogger(__name__)

# How often a consumer tries the broker again while it is away (kombu's default grows 2, 4, 6 …
# up to 30 s, so a worker came back up to half a minute after the broker did).
RECONNECT_INTERVAL_SECONDS = 1.0


class PromptlyReconnectingConsumer(Consumer):
    """Celery's consumer, retrying the broker every second instead of with a growing delay."""

    def ensure_connected(self, conn: Any) -> Any:
        conn.ensure_connection = functools.partial(
            conn.ensure_connection,
            interval_start=RECONNECT_INTERVAL_SECONDS,
            interval_step=0,
            interval_max=RECONNECT_INTERVAL_SECONDS,
        )
        return super().ensure_connected(conn)


class _UnackedStayInRedisQoS(kombu_redis.QoS):
    def restore_unacked(self, client: Any = None) -> None:
        try:
            super().restore_unacked(client)
        except (AttributeError, redis.RedisError) as exc:
            # Redis is away (that is why the channel closes): the messages are safe in its
            # unacked set, and the visibility timeout returns them to the queue.
            delivered: dict[str, Any] = self._delivered if self._delivered is not None else {}
            logger.warning(
                "broker gone; unacknowledged messages stay in its unacked set",
                extra={"messages": len(delivered), "error": f"{exc.__class__.__name__}: {exc}"},
            )
            delivered.clear()


class _Channel(kombu_redis.Channel):
    QoS = _UnackedStayInRedisQoS


class RedisTransport(kombu_redis.Transport):
    """kombu's Redis transport whose channels survive losing Redis while holding messages."""

    Channel = _Channel


def is_amqp(broker_url: str) -> bool:
    return broker_url.split("://", 1)[0] in ("amqp", "amqps", "pyamqp")


class BrokerMisconfigured(ValueError):
    """Broker settings that would make the broker deliver one message to two workers."""


def check_redis_visibility(*, visibility_timeout: int, task_time_limit: int, retry_backoff_max: int) -> None:
    """Refuse a Redis visibility timeout shorter than what a worker may hold a message for.

    A worker holds a message unacknowledged while the task runs (at most the hard time limit) and,
    for a consumer's retry, while its countdown runs (at most the retry back-off cap). Redis hands a
    message out again once it has been unacknowledged for the visibility timeout, so a shorter one
    runs the task twice (harmless for our idempotent consumers, but wasted work, and a sign the
    redelivery bound is not the one the operator thinks). Checked when the app is configured, so a
    worker with such settings does not start.
    """
    held_at_most = task_time_limit + retry_backoff_max
    if visibility_timeout < held_at_most:
        raise BrokerMisconfigured(
            f"CELERY_VISIBILITY_TIMEOUT_SECONDS={visibility_timeout} is shorter than a worker may hold a message "
            f"on Redis: CELERY_TASK_TIME_LIMIT_SECONDS={task_time_limit} + CELERY_RETRY_BACKOFF_MAX_SECONDS="
            f"{retry_backoff_max} = {held_at_most}; raise the timeout or lower the limits (docs/broker.md)"
        )


def broker_settings(
    broker_url: str,
    *,
    visibility_timeout: int,
    restore_seconds: int,
    heartbeat_seconds: int,
    task_time_limit: int,
    retry_backoff_max: int,
) -> dict[str, Any]:
    """The Celery settings (``CELERY_``-less names) that depend on the broker."""
    common: dict[str, Any] = {
        # Never give up on the broker: a worker that exits after N attempts is a dead consumer.
        "broker_connection_retry": True,
        "broker_connection_retry_on_startup": True,
        "broker_connection_max_retries": None,
        "broker_connection_timeout": 2,
        "worker_cancel_long_running_tasks_on_connection_loss": True,
        "task_time_limit": task_time_limit,
        "task_soft_time_limit": max(1, task_time_limit - 5),
    }
    if is_amqp(broker_url):
        return common | {
            "broker_heartbeat": heartbeat_seconds,
            "broker_transport_options": {"confirm_publish": True, "connect_timeout": 2},
            "task_queue_durable": True,  # the default, stated: queues survive a broker restart
            "task_default_delivery_mode": "persistent",
        }
    check_redis_visibility(
        visibility_timeout=visibility_timeout, task_time_limit=task_time_limit, retry_backoff_max=retry_backoff_max
    )
    options: dict[str, Any] = {
        "visibility_timeout": visibility_timeout,
        "socket_connect_timeout": 2,
        "socket_timeout": 5,
    }
    if restore_seconds > 0:
        options |= {"unacked_restore_interval": restore_seconds, "unacked_restore_throttle": 1}
    return common | {"broker_transport": "bazaar_common.celery:RedisTransport", "broker_transport_options": options}


# The exec liveness probe of worker pods (charts/bazaar/templates/celery.yaml renders exactly this):
# plain sh, date and stat, so a probe costs no Python start. It fails when the heartbeat file is
# missing (consumer never connected, or disconnected: the step removes it) or older than the limit
# (the consumer's event loop is stuck).
HEARTBEAT_PROBE = (
    'f="$CELERY_HEARTBEAT_FILE"; test -f "$f" && '
    'test $(( $(date +%s) - $(stat -c %Y "$f") )) -lt "$CELERY_HEARTBEAT_MAX_AGE_SECONDS"'
)


class ConsumerHeartbeat(bootsteps.StartStopStep):
    """Touches ``CELERY_HEARTBEAT_FILE`` every ``CELERY_HEARTBEAT_SECONDS`` while consuming.

    A consumer step started after the task consumer (so only once messages can arrive); Celery
    stops and restarts consumer steps when the broker connection is lost and re-established, and
    :meth:`stop` removes the file then. The timer runs on the consumer's event loop, so a loop that
    no longer turns stops the heartbeat too. Tasks run in the prefork pool's children, so a long
    task does not stop it. Without ``CELERY_HEARTBEAT_FILE`` (laptops, tests) the step does nothing.
    """

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def __init__(self, parent: object, **kwargs: object) -> None:
        super().__init__(parent, **kwargs)
        configured = os.environ.get("CELERY_HEARTBEAT_FILE")
        self.path = Path(configured) if configured else None
        self.interval = float(os.environ.get("CELERY_HEARTBEAT_SECONDS") or "10")
        self._entry = None

    def start(self, consumer: Any) -> None:
        if self.path is None:
            return
        self._touch()
        self._entry = consumer.timer.call_repeatedly(self.interval, self._touch)

    def stop(self, consumer: Any) -> None:
        if self._entry is not None:
            self._entry.cancel()
            self._entry = None
        if self.path is not None:
            self.path.unlink(missing_ok=True)

    shutdown = stop

    def _touch(self) -> None:
        if self.path is not None:
            self.path.touch()


class _ConnectionKeepingWorkerFixup(DjangoWorkerFixup):
    """Celery's Django worker fixup, closing database connections by Django's own rule.

    Celery 5.7 closes every connection before and after every task (``conn.close()``), so each
    task opened a new PostgreSQL connection: a backend process started, authenticated and set up
    twice per message — the largest single cost of a checkout's messages. Here a task ends the
    way a web request does (``close_old_connections``): a connection is closed when it is broken,
    left in a transaction, or older than ``CONN_MAX_AGE``; otherwise the next task reuses it (with
    ``CONN_HEALTH_CHECKS``, after checking it still works). A forked pool process still closes
    the connections it inherited (``on_worker_process_init`` is Celery's own).
    """

    def close_database(self, **kwargs: Any) -> None:
        from django.db import close_old_connections

        close_old_connections()

    def on_task_postrun(self, sender: Any, **kwargs: Any) -> None:
        """After a task that did not succeed, close its connections whatever Django's rule says.

        It may have been interrupted anywhere: a soft time limit is raised asynchronously, possibly
        mid-statement, and the connection's state is then unknown. Django keeps a connection that
        reports itself usable, and SQLite's always does: a pool process whose task was interrupted
        in a lock wait answered "database disk image is malformed" to every later task (the file
        was intact), so the orders it was to settle stayed pending. Failures are rare; the next
        task opens a fresh connection.
        """
        if kwargs.get("state") != celery_states.SUCCESS and not getattr(sender.request, "is_eager", False):
            self._close_database()
            self.close_cache()
            return
        super().on_task_postrun(sender, **kwargs)


class _ConnectionKeepingFixup(DjangoFixup):
    @property
    def worker_fixup(self) -> DjangoWorkerFixup:
        if self._worker_fixup is None:  # type: ignore[has-type]  # set by DjangoFixup.__init__, untyped in the stubs
            self._worker_fixup = _ConnectionKeepingWorkerFixup(self.app)
        return self._worker_fixup

    @worker_fixup.setter
    def worker_fixup(self, value: DjangoWorkerFixup) -> None:
        self._worker_fixup = value


def django_fixup(app: Celery) -> DjangoFixup:
    """The ``fixups`` entry of every service's app (instead of Celery's ``celery.fixups.django``)."""
    fixup = _ConnectionKeepingFixup(app)
    fixup.install()  # returns the fixup itself at run time; the stubs say None
    return fixup


def make_celery_app(service: str, *, package: str) -> Celery:
    # Before anything imports prometheus_client: the pool processes write their samples there.
    prepare_multiprocess()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", f"{package}.config.settings")
    app = Celery(package, fixups=["bazaar_common.celery:django_fixup"])
    app.config_from_object("django.conf:settings", namespace="CELERY")
    # From the environment, as the settings' CELERY_BROKER_URL (the settings are not loaded yet).
    app.conf.update(celery_broker_settings(celery_broker_url()))
    app.conf.update(
        task_default_queue=service,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        # The outbox relay retries by itself; a publish must fail fast, not block a thread.
        task_publish_retry=False,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        worker_consumer="bazaar_common.celery:PromptlyReconnectingConsumer",
        bazaar_service=service,  # read back by the worker's observability set-up
    )
    app.steps["worker"].add(ThreadedBeat)
    app.steps["worker"].add(ThreadPoolDeadlines)
    app.steps["consumer"].add(ConsumerHeartbeat)
    app.autodiscover_tasks()
    return app


class ThreadedBeat(bootsteps.StartStopStep):
    """The service's beat as a thread of this worker, when ``CELERY_BEAT_THREAD_SCHEDULE`` names
    its schedule file (``make up`` and the e2e platform set it on one worker per service).

    ``-B`` would fork a process of its own for it: one more interpreter (30-40 MiB) per service.
    """

    label = "ThreadedBeat"
    conditional = True

    def __init__(self, worker: object, **kwargs: object) -> None:
        self.schedule = os.environ.get("CELERY_BEAT_THREAD_SCHEDULE", "")
        self.enabled = bool(self.schedule)
        super().__init__(worker, **kwargs)

    def create(self, worker: Any) -> Any:
        from celery.beat import EmbeddedService

        return EmbeddedService(worker.app, schedule_filename=self.schedule, thread=True)


# Exit status of a worker ended by a task past its hard time limit (EX_SOFTWARE).
HARD_LIMIT_EXIT_STATUS = 70


@dataclass
class _RunningTask:
    task_id: str
    name: str
    soft_at: float
    hard_at: float
    soft_raised: bool = False


class TaskDeadlineWatchdog:
    """Soft and hard time limits for tasks that run in threads of this process.

    ``started``/``finished`` are called from the task's own thread (Celery's ``task_prerun`` and
    ``task_postrun``); :meth:`check` (from the watchdog thread, every ``interval``) raises
    ``SoftTimeLimitExceeded`` in a thread past its soft limit, once, at its next Python
    instruction (``PyThreadState_SetAsyncExc``: an exception cannot reach a thread blocked inside
    a C call, so the hard limit is needed too), and calls ``on_hard_limit`` (``os._exit``) when one
    is past its hard limit.
    """

    def __init__(
        self,
        *,
        soft_seconds: float | None,
        hard_seconds: float,
        on_hard_limit: Callable[[int], Any] = os._exit,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.soft_seconds = soft_seconds if soft_seconds and soft_seconds < hard_seconds else None
        self.hard_seconds = hard_seconds
        self._on_hard_limit = on_hard_limit
        self._clock = clock
        self._running: dict[int, _RunningTask] = {}
        self._lock = threading.Lock()

    def started(
        self, *, task_id: str, name: str, soft_seconds: float | None = None, hard_seconds: float | None = None
    ) -> None:
        now = self._clock()
        hard = hard_seconds or self.hard_seconds
        soft = soft_seconds or self.soft_seconds
        with self._lock:
            self._running[threading.get_ident()] = _RunningTask(
                task_id=task_id, name=name, soft_at=now + soft if soft else float("inf"), hard_at=now + hard
            )

    def finished(self) -> None:
        with self._lock:
            self._running.pop(threading.get_ident(), None)

    def check(self) -> None:
        now = self._clock()
        with self._lock:
            running = list(self._running.items())
        for thread_id, task in running:
            if now >= task.hard_at:
                logger.critical(
                    "task past its hard time limit: ending the worker (restarted by its launcher; the broker "
                    "hands out its messages again)",
                    extra={"task_id": task.task_id, "task": task.name, "limit_seconds": self.hard_seconds},
                )
                self._on_hard_limit(HARD_LIMIT_EXIT_STATUS)
                return
            if now >= task.soft_at and not task.soft_raised:
                task.soft_raised = True
                logger.error("task past its soft time limit", extra={"task_id": task.task_id, "task": task.name})
                ctypes.pythonapi.PyThreadState_SetAsyncExc(
                    ctypes.c_ulong(thread_id), ctypes.py_object(SoftTimeLimitExceeded)
                )


class ThreadPoolDeadlines(bootsteps.StartStopStep):
    """Enforces the task time limits in a worker whose pool does not (``threads``, ``solo``).

    Why it matters: the Redis visibility timeout is sized to the hard limit; a task running past
    it would be handed to a second worker while the first still runs. Prefork enforces the limits
    itself (it kills the child), so there this step does nothing.
    """

    label = "ThreadPoolDeadlines"
    conditional = True

    def __init__(self, worker: Any, **kwargs: object) -> None:
        from celery.concurrency.prefork import TaskPool as PreforkPool

        conf = worker.app.conf
        pool_cls = worker.pool_cls
        enforced_by_pool = isinstance(pool_cls, type) and issubclass(pool_cls, PreforkPool)
        self.enabled = bool(conf.task_time_limit) and not enforced_by_pool
        self.watchdog = TaskDeadlineWatchdog(soft_seconds=conf.task_soft_time_limit, hard_seconds=conf.task_time_limit)
        self._stop = threading.Event()
        super().__init__(worker, **kwargs)

    def start(self, worker: Any) -> None:
        task_prerun.connect(self._started, weak=False)
        task_postrun.connect(self._finished, weak=False)
        threading.Thread(target=self._watch, name="task-deadlines", daemon=True).start()

    def stop(self, worker: Any) -> None:
        self._stop.set()
        task_prerun.disconnect(self._started)
        task_postrun.disconnect(self._finished)

    shutdown = stop

    def _started(self, task_id: str = "", task: Any = None, **kwargs: object) -> None:
        self.watchdog.started(
            task_id=task_id,
            name=getattr(task, "name", ""),
            soft_seconds=getattr(task, "soft_time_limit", None),
            hard_seconds=getattr(task, "time_limit", None),
        )

    def _finished(self, **kwargs: object) -> None:
        self.watchdog.finished()

    def _watch(self) -> None:
        while not self._stop.wait(0.5):
            self.watchdog.check()


@worker_init.connect
def _observe_worker(sender: Any = None, **kwargs: object) -> None:
    """In the worker's main process, before the pool starts (its processes inherit all of it)."""
    from bazaar_common.task_observability import start_worker_observability

    app = sender.app
    start_worker_observability(app.conf.bazaar_service, queues=[app.conf.task_default_queue])


@worker_ready.connect
def _start_outbox_relay(sender: object = None, **kwargs: object) -> None:
    from bazaar_common.outbox.relay import start_relay_thread

    start_relay_thread()


@worker_shutdown.connect
def _stop_outbox_relay(sender: object = None, **kwargs: object) -> None:
    from bazaar_common.outbox.relay import stop_relay_thread

    stop_relay_thread()
