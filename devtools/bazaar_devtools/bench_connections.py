"""``make bench-connections``: ten instances of every service behind the chart's PgBouncer, under
load, and the PostgreSQL connections they cost, counted in ``pg_stat_activity``.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bazaar_bench make bench-connections

What runs: a platform of its own (``INSTANCES`` web instances of each of the five services,
default 10, and ``WORKERS`` Celery workers of each of the four with a worker, default 10) whose
web, worker and beat processes connect through PgBouncer exactly as the chart configures it: the
``pgbouncer.ini`` and ``pg_hba.conf`` are rendered by ``helm template`` from
``charts/bazaar`` with the default pool values, and ``pgbouncer.replicas`` (2) PgBouncer
processes share the port (``so_reuseport``), as two pods behind a Service would. Only the
addresses, the auth file's path and that one option are changed for this machine. Migrations run
directly, as the chart's Jobs do. Needs Debian's ``pgbouncer`` package (``apt-get install
pgbouncer``) and helm (fetched by charts/tools.sh).

The load: ``CLIENTS`` threads (default 48) GET every web instance's ``/readyz`` round robin (a
query on whichever request thread answers) while ``ORDER_CLIENTS`` (default 4) place orders
through the gateway (the saga's tasks run in the workers) for ``SECONDS`` (default 30). Sampled
every 0.2 s: server connections to the platform's databases (total and per database), and the
client connections the platform's processes hold to PgBouncer (what they would hold on PostgreSQL
without it). Results: printed, written to ``docs/connections.json`` and into docs/capacity.md.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import requests
import yaml

from bazaar_devtools.capacity import DOCS, write_connection_section
from bazaar_devtools.connections import ConnectionSampler, Holder, holders_of
from bazaar_devtools.platform import (
    ALL_PROJECTS,
    GATEWAY,
    ROOT,
    SERVICES,
    Platform,
    PlatformConfig,
    database_base_name,
    drop_postgres_database,
    free_port,
    with_database_name,
)

BENCH_PASSWORD = "bench-only"
WAVE = 8


def helm() -> str:
    found = subprocess.run(
        ["bash", "-c", 'source charts/tools.sh >/dev/null && echo "$HELM"'],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return found.stdout.strip().splitlines()[-1]


def chart_pgbouncer_config(upstream_host: str, upstream_port: int) -> tuple[dict, str, str]:
    """The chart's values of pgbouncer, its rendered pgbouncer.ini and pg_hba.conf."""
    rendered = subprocess.run(
        [helm(), "template", "bench", "charts/bazaar", "--show-only", "templates/pgbouncer.yaml",
         "--set", "pgbouncer.enabled=true", "--set", f"pgbouncer.upstream.host={upstream_host}",
         "--set", f"pgbouncer.upstream.port={upstream_port}"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    config = next(d for d in yaml.safe_load_all(rendered) if d and d["kind"] == "ConfigMap")
    values = yaml.safe_load((ROOT / "charts" / "bazaar" / "values.yaml").read_text())["pgbouncer"]
    return values, config["data"]["pgbouncer.ini"], config["data"]["pg_hba.conf"]


class LocalPgBouncer:
    """``replicas`` PgBouncer processes on one port (so_reuseport) with the chart's settings."""

    def __init__(self, upstream: str, replicas: int, directory: Path) -> None:
        parts = urlsplit(upstream)
        self.values, ini, hba = chart_pgbouncer_config(parts.hostname or "127.0.0.1", parts.port or 5432)
        self.port = free_port()
        self.replicas = replicas
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        directory.chmod(0o755)
        local = (
            ini.replace("listen_addr = 0.0.0.0", "listen_addr = 127.0.0.1")
            .replace(f"listen_port = {self.values['port']}", f"listen_port = {self.port}")
            .replace("/etc/pgbouncer/auth/", f"{directory}/")
            .replace("/etc/pgbouncer/pg_hba.conf", f"{directory}/pg_hba.conf")
        )
        local += "\n; this machine only: the replicas share the port as pods share a Service\nso_reuseport = 1\n"
        user = parts.username or "postgres"
        files = {
            "pgbouncer.ini": local,
            "pg_hba.conf": hba,
            "userlist.txt": f'"{user}" "{BENCH_PASSWORD}"\n"{self.values["metrics"]["statsUser"]}" ""\n',
        }
        for name, text in files.items():
            (directory / name).write_text(text)
            (directory / name).chmod(0o644)
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self) -> LocalPgBouncer:
        binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
        if not Path(binary).exists():
            raise SystemExit("pgbouncer is not installed: apt-get install pgbouncer (Debian's package)")
        # PgBouncer refuses to run as root: drop to nobody when we are root.
        prefix = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"] if os.geteuid() == 0 else []
        for index in range(self.replicas):
            log = (self.directory / f"pgbouncer-{index}.log").open("wb")
            self.processes.append(
                subprocess.Popen([*prefix, binary, str(self.directory / "pgbouncer.ini")], stdout=log, stderr=log)
            )
        time.sleep(1)
        for process in self.processes:
            if process.poll() is not None:
                raise SystemExit(f"pgbouncer exited: {(self.directory / 'pgbouncer-0.log').read_text()[-2000:]}")
        return self

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()

    @property
    def server_cap(self) -> int:
        pool = self.values["pool"]
        return self.replicas * len(ALL_PROJECTS) * (pool["defaultPoolSize"] + pool["reservePoolSize"])


def with_password(url: str, password: str) -> str:
    parts = urlsplit(url)
    netloc = f"{parts.username or 'postgres'}:{password}@{parts.hostname}:{parts.port or 5432}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def client_connections(holders: list[Holder], port: int) -> Counter[str]:
    """Connections each holder (with its process tree) has open to ``port`` right now."""
    import psutil

    owner: dict[int, str] = {}
    for holder in holders:
        try:
            root = psutil.Process(holder.pid)
        except psutil.Error:
            continue
        owner[root.pid] = holder.name
        for child in root.children(recursive=True):
            owner[child.pid] = holder.name
    counts: Counter[str] = Counter()
    for conn in psutil.net_connections(kind="tcp"):
        if conn.pid in owner and conn.raddr and conn.raddr.port == port and conn.status == psutil.CONN_ESTABLISHED:
            counts[owner[conn.pid]] += 1
    return counts


def main() -> int:
    database_url = os.environ.get("DATABASE_URL", "")
    if not database_url.startswith("postgres"):
        print("make bench-connections needs PostgreSQL: DATABASE_URL=postgres://user@host:5432/bazaar_bench")
        return 2
    instances = int(os.environ.get("INSTANCES", "10"))
    workers = int(os.environ.get("WORKERS", str(instances)))
    clients = int(os.environ.get("CLIENTS", "48"))
    order_clients = int(os.environ.get("ORDER_CLIENTS", "4"))
    seconds = float(os.environ.get("SECONDS", "30"))
    run = uuid.uuid4().hex[:6]
    base = f"{database_base_name(database_url)}_conn_{run}"
    url = with_password(with_database_name(database_url, base), BENCH_PASSWORD)
    work = Path(tempfile.mkdtemp(prefix="bazaar-bench-connections-"))
    work.chmod(0o755)  # PgBouncer runs as nobody when we are root and reads its files below
    pooler = LocalPgBouncer(url, replicas=2, directory=work / "pgbouncer").start()
    config = PlatformConfig(
        var_dir=work / "var", gateway_port=free_port(), port_base=30000 + (int(run, 16) % 300) * 100,
        database_url=url, redis_url=None, debug=True,
        replicas={spec.name: instances for spec in ALL_PROJECTS},
        extra_env={"GATEWAY_RATE_LIMITING": "0", "LOG_LEVEL": "WARNING"},
    )  # fmt: skip
    platform = Platform(config)
    platform.start_watchdog()
    databases = [f"{base}_{spec.name}" for spec in ALL_PROJECTS]
    started = time.monotonic()
    try:
        platform.start_redis_if_needed()
        platform.prepare_databases()  # directly, as the chart's migration Jobs
        platform.seed_demo_data()
        # From here on every process connects through PgBouncer, as the chart's pods do.
        config.extra_env |= {
            "DB_POOLER_HOST": "127.0.0.1",
            "DB_POOLER_PORT": str(pooler.port),
            "DB_TRANSACTION_POOLING": "1",
        }
        # In waves, so that fifty Django processes booting at once on a small machine do not
        # time each other out.
        procs = platform.initial_procs()
        for spec in SERVICES:
            procs += [platform.worker_proc(spec, index) for index in range(1, workers)]
        for wave in range(0, len(procs), WAVE):
            for proc in procs[wave : wave + WAVE]:
                platform.spawn(proc)
            for proc in procs[wave : wave + WAVE]:
                if proc.kind == "web":
                    platform.wait_ready(proc, timeout=300)
        print(f"platform up in {time.monotonic() - started:.0f}s: {len(platform.procs)} processes", flush=True)
        time.sleep(5)  # the added workers connect
        result = measure(platform, pooler, databases, clients, order_clients, seconds)
    finally:
        platform.shutdown()
        pooler.stop()
        for name in databases:
            drop_postgres_database(with_database_name(url, name))
        shutil.rmtree(work, ignore_errors=True)
    result |= {
        "instances_per_service": instances,
        "workers_per_service": workers,
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    print(json.dumps(result, indent=2))
    (DOCS / "connections.json").write_text(json.dumps(result, indent=2) + "\n")
    write_connection_section(result)
    return 0 if result["server_peak_total"] <= 100 and result["errors"] == 0 else 1


def customer_token(session: requests.Session, gateway: str) -> str | None:
    """A fresh customer's access token (a loaded machine may need a few tries); None: no orders."""
    email, password = f"bench-{uuid.uuid4().hex[:8]}@example.com", f"Pw-{uuid.uuid4().hex}"
    for _ in range(10):
        try:
            registered = session.post(
                f"{gateway}/api/v1/auth/register", json={"email": email, "password": password}, timeout=60
            )
            # A sign-up that timed out at the gateway may still have been done by auth: sign in anyway.
            signed_in = session.post(
                f"{gateway}/api/v1/auth/token", json={"email": email, "password": password}, timeout=60
            )
            if signed_in.status_code == 200:
                return signed_in.json()["access"]
            print(f"sign-up/in not yet: {registered.status_code} {registered.text[:200]}", flush=True)
        except requests.RequestException as error:
            print(f"sign-up/in not yet: {error}", flush=True)
        time.sleep(3)
    print("no customer token: running the readiness load alone", flush=True)
    return None


def measure(platform: Platform, pooler: LocalPgBouncer, databases: list[str], clients: int,
            order_clients: int, seconds: float) -> dict:  # fmt: skip
    procs = [proc for proc in platform.procs if proc.alive]
    # Server side only: every server connection is PgBouncer's (the clients are counted apart).
    sampler = ConnectionSampler(platform.database_url(GATEWAY), databases, [], interval=0.2)
    holders = holders_of(procs)
    gateway = f"http://127.0.0.1:{platform.config.gateway_port}"
    session = requests.Session()
    token = customer_token(session, gateway)
    product = None
    for _ in range(10):  # a loaded machine may time the first (uncached) read out
        listed = session.get(f"{gateway}/api/v1/catalog/products", timeout=60)
        if listed.status_code == 200:
            product = listed.json()["results"][0]["id"]
            break
        time.sleep(3)
    if product is None:
        token = None
    urls = [f"{proc.url}/readyz" for proc in procs if proc.kind == "web"]
    deadline = time.monotonic() + seconds
    codes: Counter[int] = Counter()
    orders: Counter[int] = Counter()
    lock = threading.Lock()
    client_peaks: Counter[str] = Counter()
    client_total_peak = 0

    def readiness(offset: int) -> None:
        http = requests.Session()
        index = offset
        while time.monotonic() < deadline:
            try:
                code = http.get(urls[index % len(urls)], timeout=30).status_code
            except requests.RequestException:
                code = 0
            with lock:
                codes[code] += 1
            index += 1

    def ordering(_: int) -> None:
        http = requests.Session()
        while token is not None and time.monotonic() < deadline:
            body = {"items": [{"product_id": product, "quantity": 1}]}
            headers = {"Authorization": f"Bearer {token}"}
            try:
                code = http.post(f"{gateway}/api/v1/orders", headers=headers, json=body, timeout=30).status_code
            except requests.RequestException:
                code = 0
            with lock:
                orders[code] += 1

    sampler.start()
    with ThreadPoolExecutor(clients + order_clients) as pool:
        futures = [pool.submit(readiness, i) for i in range(clients)]
        futures += [pool.submit(ordering, i) for i in range(order_clients)]
        while time.monotonic() < deadline:
            held = client_connections(holders, pooler.port)
            client_total_peak = max(client_total_peak, sum(held.values()))
            for name, count in held.items():
                client_peaks[name] = max(client_peaks[name], count)
            time.sleep(2)
        for future in futures:
            future.result()
    sampler.stop()
    by_kind: dict[str, int] = {}
    for holder in holders:
        key = f"{holder.kind} ({'gateway' if holder.service == 'gateway' else 'service'})"
        by_kind[key] = max(by_kind.get(key, 0), client_peaks.get(holder.name, 0))
    return {
        "processes": len(procs),
        "pgbouncer_replicas": pooler.replicas,
        "pgbouncer_server_cap": pooler.server_cap,
        "server_peak_total": sampler.peak_total(),
        "server_peak_by_database": {
            name.rsplit("_", 1)[-1]: count for name, count in sampler.peak_by_database().items()
        },
        "client_peak_total": client_total_peak,
        "client_peak_per_process_by_kind": by_kind,
        "readiness_requests": sum(codes.values()),
        "readiness_codes": {str(code): count for code, count in codes.items()},
        "orders_placed": orders.get(202, 0),
        "order_codes": {str(code): count for code, count in orders.items()},
        "errors": sum(count for code, count in codes.items() if code != 200)
        + sum(count for code, count in orders.items() if code not in (202, 429)),
        "seconds": seconds,
        "samples": len(sampler.samples),
    }


if __name__ == "__main__":
    sys.exit(main())
