"""PostgreSQL connections: what each process may hold (its budget) and who holds what right now.

The budget follows from :func:`bazaar_common.settings.database_config` (Django keeps one connection
per thread that used the database, for ``DB_CONN_MAX_AGE`` seconds) and from the threads each
process runs:

* a **service's web instance**: one per request thread (``--threads`` × ``--workers``; readiness
  runs in a request thread and uses that thread's connection, it opens none of its own), plus the
  outbox publisher thread of each worker process, which gives its connection back whenever
  nothing waits to be published;
* the **gateway's web instance**: none held. Its database serves only its admin
  (``CONN_MAX_AGE`` 0): the proxy path never touches it, and a ``/readyz`` or admin request
  closes what it opened when it ends (so at most one per request thread while such requests run);
* a **Celery worker**: one per pool process or thread (``--concurrency``), plus the outbox relay
  thread, plus the metrics listener's outbox-backlog query (closed after each scrape), plus the
  outbox publisher thread that sends a task's replies after its commit (given back when idle); beat, as a
  thread of a worker or a process of its own, sends tasks and queries nothing.

:class:`ConnectionSampler` counts the connections in ``pg_stat_activity`` while the platform runs
and attributes each to the process that holds its client port (psutil), so the e2e test
(``tests/e2e/test_connection_budget.py``) and ``make bench-connections`` measure the budget
rather than assume it.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

# Threads of a web worker process that may hold a connection besides the request threads.
WEB_EXTRA_PER_PROCESS = 1  # the outbox publisher (bazaar_common.outbox.services.BackgroundPublisher)
# Of a Celery worker besides its pool: the outbox relay thread, the backlog metric's scrape and the
# outbox publisher thread (a task's replies and acknowledgements are published after its commit by
# the same BackgroundPublisher a web process runs; CI caught a worker holding all five at once).
WORKER_EXTRA = 3


def web_budget(service: str, *, workers: int, threads: int) -> int:
    """Connections a web instance may hold at once."""
    if service == "gateway":
        # None held; while /readyz (its degrading database check) or an admin page runs, that
        # request's thread has one, closed when the request ends.
        return workers * threads
    return workers * (threads + WEB_EXTRA_PER_PROCESS)


def worker_budget(*, concurrency: int) -> int:
    """Connections a Celery worker (its main process and its pool together) may hold at once."""
    return concurrency + WORKER_EXTRA


def admin_url(url: str) -> str:
    """The same server's ``postgres`` database (where pg_stat_activity is read from)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/postgres", parts.query, ""))


def server_connections(cursor, databases: Iterable[str]) -> list[tuple[str, int | None, str]]:
    """(database, client port, state) of every client backend connected to ``databases``."""
    cursor.execute(
        "SELECT datname, client_port, coalesce(state, '') FROM pg_stat_activity "
        "WHERE backend_type = 'client backend' AND datname = ANY(%s) AND pid <> pg_backend_pid()",
        [list(databases)],
    )
    return [(row[0], row[1], row[2]) for row in cursor.fetchall()]


@dataclass
class Holder:
    """A process of the platform and every process below it (granian workers, prefork children)."""

    name: str
    service: str
    kind: str
    pid: int
    budget: int


@dataclass
class Sample:
    at: float
    total: int
    by_database: Counter[str]
    by_holder: Counter[str]
    unattributed: int


@dataclass
class ConnectionSampler:
    """Samples ``pg_stat_activity`` every ``interval`` seconds in a thread of its own.

    ``holders``: the processes whose connections are attributed (each with its process tree).
    Connections from anywhere else (a pooler, another client) count as unattributed.
    """

    url: str
    databases: list[str]
    holders: list[Holder] = field(default_factory=list)
    interval: float = 0.2
    samples: list[Sample] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def sample(self) -> Sample:
        import psycopg2

        connection = psycopg2.connect(admin_url(self.url))
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                rows = server_connections(cursor, self.databases)
        finally:
            connection.close()
        owner = self._port_owners() if self.holders else {}
        by_holder: Counter[str] = Counter()
        unattributed = 0
        for _database, port, _state in rows:
            name = owner.get(port) if port is not None else None
            if name is None:
                unattributed += 1
            else:
                by_holder[name] += 1
        found = Sample(time.monotonic(), len(rows), Counter(row[0] for row in rows), by_holder, unattributed)
        self.samples.append(found)
        return found

    def _port_owners(self) -> dict[int, str]:
        """Local TCP port → holder name, for the holders' whole process trees."""
        import psutil

        pid_to_holder: dict[int, str] = {}
        for holder in self.holders:
            with contextlib.suppress(psutil.Error):
                root = psutil.Process(holder.pid)
                pid_to_holder[root.pid] = holder.name
                for child in root.children(recursive=True):
                    pid_to_holder[child.pid] = holder.name
        owners: dict[int, str] = {}
        for conn in psutil.net_connections(kind="tcp"):
            if conn.pid in pid_to_holder and conn.laddr and conn.raddr:
                owners[conn.laddr.port] = pid_to_holder[conn.pid]
        return owners

    def start(self) -> ConnectionSampler:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="connection-sampler", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    # --- figures ---------------------------------------------------------------------------
    def peak_total(self) -> int:
        return max((s.total for s in self.samples), default=0)

    def peak_by_database(self) -> dict[str, int]:
        peaks: Counter[str] = Counter()
        for s in self.samples:
            for name, count in s.by_database.items():
                peaks[name] = max(peaks[name], count)
        return dict(peaks)

    def peak_by_holder(self) -> dict[str, int]:
        peaks = {holder.name: 0 for holder in self.holders}
        for s in self.samples:
            for name, count in s.by_holder.items():
                peaks[name] = max(peaks.get(name, 0), count)
        return peaks

    def over_budget(self) -> list[str]:
        """One line per holder whose peak exceeded its budget."""
        peaks = self.peak_by_holder()
        return [
            f"{holder.name} held {peaks[holder.name]} connections, budget {holder.budget}"
            for holder in self.holders
            if peaks[holder.name] > holder.budget
        ]


def _flag(command: list[str], flag: str, default: int) -> int:
    if flag in command and command.index(flag) + 1 < len(command):
        return int(command[command.index(flag) + 1])
    return default


def holders_of(procs: Iterable) -> list[Holder]:
    """The budget of every running process of a :class:`bazaar_devtools.platform.Platform`, from
    the command line it was started with."""
    holders = []
    for proc in procs:
        if not proc.alive:
            continue
        if proc.kind == "web":
            workers, threads = _flag(proc.command, "--workers", 1), _flag(proc.command, "--threads", 8)
            budget = web_budget(proc.service, workers=workers, threads=threads)
        else:
            budget = worker_budget(concurrency=_flag(proc.command, "--concurrency", 2))
        holders.append(Holder(proc.name, proc.service, proc.kind, proc.pid, budget))
    return holders
