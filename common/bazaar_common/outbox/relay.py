"""The outbox relay: a thread inside each Celery worker that publishes what is still unpublished
and re-sends what its consumer never acknowledged.

It does not depend on the broker to be scheduled (a beat task would), so messages written while
the broker was down go out as soon as it is back.
"""

from __future__ import annotations

import logging
import os
import threading
from datetime import timedelta

from django.db import close_old_connections

logger = logging.getLogger(__name__)
_stop = threading.Event()
_thread: threading.Thread | None = None


def _loop(interval: float, grace: timedelta) -> None:
    from bazaar_common.outbox.services import outbox_publish, outbox_redrive

    while not _stop.is_set():
        try:
            close_old_connections()
            # What the writing process's publisher thread has not sent within ``grace`` (it
            # died, the broker was away): fresher messages are its job, and a relay racing it
            # for them under load doubled the cost of every message.
            published = outbox_publish(older_than=grace)
            # Then whatever was published but never acknowledged by its consumer in time.
            published += outbox_redrive()
        except Exception as exc:  # whatever fails (database, broker), the relay goes on
            logger.warning("outbox relay round failed", extra={"error": str(exc)})
            published = 0
        if published:
            logger.info("outbox relayed", extra={"count": published})
            continue  # there may be more: go again at once
        _stop.wait(interval)


def start_relay_thread() -> None:
    global _thread
    if _thread is not None or os.environ.get("OUTBOX_RELAY", "1") == "0":
        return
    interval = float(os.environ.get("OUTBOX_RELAY_INTERVAL", "1.0"))
    grace = timedelta(seconds=float(os.environ.get("OUTBOX_RELAY_GRACE_SECONDS", "1.0")))
    _stop.clear()
    _thread = threading.Thread(target=_loop, args=(interval, grace), name="outbox-relay", daemon=True)
    _thread.start()


def stop_relay_thread() -> None:
    _stop.set()
