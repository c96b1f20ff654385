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
  must be longer than any task (``CELERY_TASK_TIME_LIMIT_SECONDS`` enforces that) and any
  countdown, or Redis hands a running task to a second worker: 60 s by default against a 30 s
  hard limit, so a killed worker's messages are back within about a minute.

Observability of workers (see :mod:`bazaar_common.task_observability`): Sentry and tracing are set
up in the worker too, every task runs with the request id and trace context of the HTTP request
that caused it, task counts and durations are metrics, and the worker's main process serves the
metrics of all its pool processes on ``METRICS_PORT``.
"""

from __future__ import annotations

import functools
import logging
import os
from pathlib import Path
from typing import Any

import redis
from celery import Celery, bootsteps
from celery.signals import worker_init, worker_ready, worker_shutdown
from celery.worker.consumer import Consumer
from kombu.transport import redis as kombu_redis

from bazaar_common.metrics import prepare_multiprocess

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
    def restore_unacked(self, client: Any = None) -> list[Any]:
        try:
            return super().restore_unacked(client)
        except (AttributeError, redis.RedisError) as exc:
            # Redis is away (that is why the channel closes): the messages are safe in its
            # unacked set, and the visibility timeout returns them to the queue.
            logger.warning(
                "broker gone; unacknowledged messages stay in its unacked set",
                extra={"messages": len(self._delivered), "error": f"{exc.__class__.__name__}: {exc}"},
            )
            self._delivered.clear()
            return []


class _Channel(kombu_redis.Channel):
    QoS = _UnackedStayInRedisQoS


class RedisTransport(kombu_redis.Transport):
    """kombu's Redis transport whose channels survive losing Redis while holding messages."""

    Channel = _Channel


def is_amqp(broker_url: str) -> bool:
    return broker_url.split("://", 1)[0] in ("amqp", "amqps", "pyamqp")


def broker_settings(
    broker_url: str,
    *,
    visibility_timeout: int,
    restore_seconds: int,
    heartbeat_seconds: int,
    task_time_limit: int,
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

    def start(self, consumer: object) -> None:
        if self.path is None:
            return
        self._touch()
        self._entry = consumer.timer.call_repeatedly(self.interval, self._touch)

    def stop(self, consumer: object) -> None:
        if self._entry is not None:
            self._entry.cancel()
            self._entry = None
        if self.path is not None:
            self.path.unlink(missing_ok=True)

    shutdown = stop

    def _touch(self) -> None:
        self.path.touch()


def make_celery_app(service: str, *, package: str) -> Celery:
    # Before anything imports prometheus_client: the pool processes write their samples there.
    prepare_multiprocess()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", f"{package}.config.settings")
    app = Celery(package)
    app.config_from_object("django.conf:settings", namespace="CELERY")
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

    def create(self, worker: object) -> object:
        from celery.beat import EmbeddedService

        return EmbeddedService(worker.app, schedule_filename=self.schedule, thread=True)  # type: ignore[attr-defined]


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
