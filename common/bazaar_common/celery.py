"""The Celery application of a service, configured so that no message is lost.

* ``task_acks_late`` + ``task_reject_on_worker_lost``: a worker killed mid-task leaves the message
  on the queue for another worker (consumers are idempotent, so a redelivery is harmless);
* ``worker_prefetch_multiplier=1``: a worker holds one unacknowledged message at a time;
* a visibility timeout longer than any task and any countdown, so Redis does not hand a running
  task to a second worker.
"""

from __future__ import annotations

import os

from celery import Celery
from celery.signals import worker_ready, worker_shutdown

# Longer than any task and any countdown; tests that kill whole workers shorten it through the
# environment so that the lost tasks come back within the test.
VISIBILITY_TIMEOUT_SECONDS = int(os.environ.get("CELERY_VISIBILITY_TIMEOUT_SECONDS", "3600"))


def _unacked_restore_options() -> dict[str, int]:
    """How often a worker looks for tasks a dead worker left unacknowledged (kombu's default is
    about every 100 s, plenty beside an hour's visibility timeout; tests ask for every few)."""
    seconds = os.environ.get("CELERY_UNACKED_RESTORE_SECONDS")
    if not seconds:
        return {}
    return {"unacked_restore_interval": int(seconds), "unacked_restore_throttle": 1}


def make_celery_app(service: str, *, package: str) -> Celery:
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
        broker_connection_retry_on_startup=True,
        broker_transport_options={
            "visibility_timeout": VISIBILITY_TIMEOUT_SECONDS,
            "socket_connect_timeout": 2,
            "socket_timeout": 5,
            **_unacked_restore_options(),
        },
        # The outbox relay retries by itself; a publish must fail fast, not block a request.
        task_publish_retry=False,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
    )
    app.autodiscover_tasks()
    return app


@worker_ready.connect
def _start_outbox_relay(sender: object = None, **kwargs: object) -> None:
    from bazaar_common.outbox.relay import start_relay_thread

    start_relay_thread()


@worker_shutdown.connect
def _stop_outbox_relay(sender: object = None, **kwargs: object) -> None:
    from bazaar_common.outbox.relay import stop_relay_thread

    stop_relay_thread()
