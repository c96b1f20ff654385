"""Prometheus metrics: one listener per process, on its own port, for all of its workers.

Every web instance (granian, several worker processes) and every Celery worker (prefork pool)
serves its metrics on ``METRICS_PORT`` — never on the public port: the gateway's public port
answers ``/metrics`` with 404 like any unknown path.

Why multiprocess mode: with several worker processes per pod a scrape of one worker's
``/metrics`` sees one worker's counters. Here each process writes its samples to files in
``PROMETHEUS_MULTIPROC_DIR`` (prometheus_client's multiprocess mode) and the listener in the
server's *main* process — which serves no request itself — adds them up at scrape time. The
directory must be set before ``prometheus_client`` is first imported in any process:
:func:`prepare_multiprocess` does that in the main process, and the workers inherit it.

Without ``METRICS_PORT`` (tests, ``manage.py`` commands) nothing is served and the metrics stay in
the process's own registry.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterable
from typing import Any

logger = logging.getLogger(__name__)
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def metrics_port() -> int | None:
    raw = os.environ.get("METRICS_PORT", "").strip()
    return int(raw) if raw else None


def prepare_multiprocess() -> str | None:
    """In a server's main process: give it (and the workers it starts) an empty samples folder.

    A folder named by ``PROMETHEUS_MULTIPROC_DIR`` (an ``emptyDir`` in Kubernetes) is emptied: the
    files of a previous run's processes would add their counts to this one's. A no-op without
    ``METRICS_PORT`` or when this process was started by a server that prepared it already.
    """
    if metrics_port() is None:
        return None
    if os.environ.get("BAZAAR_METRICS_PREPARED") == "1":
        return os.environ[MULTIPROC_ENV]
    directory = os.environ.get(MULTIPROC_ENV) or tempfile.mkdtemp(prefix="bazaar-metrics-")
    os.makedirs(directory, exist_ok=True)
    for entry in os.listdir(directory):
        path = os.path.join(directory, entry)
        if os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            os.unlink(path)
    os.environ[MULTIPROC_ENV] = directory
    os.environ["BAZAAR_METRICS_PREPARED"] = "1"
    return directory


def multiprocess_enabled() -> bool:
    return bool(os.environ.get(MULTIPROC_ENV))


def start_metrics_server(collectors: Iterable[Any] = ()) -> Any:
    """Serve ``/metrics`` on ``METRICS_PORT`` from this (main) process; returns the server or None.

    ``collectors`` are evaluated at scrape time in this process only (e.g. the outbox backlog, read
    from the database once per scrape rather than once per worker).
    """
    port = metrics_port()
    if port is None:
        return None
    from prometheus_client import CollectorRegistry, start_http_server
    from prometheus_client.multiprocess import MultiProcessCollector

    if multiprocess_enabled():
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
    else:  # pragma: no cover - prepare_multiprocess always sets it when a port is given
        from prometheus_client import REGISTRY as registry
    for collector in collectors:
        registry.register(collector)
    server, _thread = start_http_server(port, addr=os.environ.get("METRICS_HOST", "127.0.0.1"), registry=registry)
    logger.info("metrics listener", extra={"port": port})
    return server


def mark_process_dead(pid: int) -> None:
    """Forget the live gauges of a worker process that exited (its counters are kept)."""
    if multiprocess_enabled():
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)
