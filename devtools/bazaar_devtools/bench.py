"""The whole platform's benchmark: reads, checkout and sign-in, each direct and through the gateway.

    make bench                      # DATABASE_URL must name a PostgreSQL server
    python -m bazaar_devtools.bench [--read-seconds 8] [--checkout-seconds 60] [--signin-seconds 10]
        [--rounds 2] [--connections 50] [--no-write]

It starts its own platform (the launcher's processes, the same as ``make up``, on fresh PostgreSQL
databases named after ``DATABASE_URL`` plus a run id, dropped afterwards), with rate limits raised
out of the way, and measures in one run:

* **reads** — the cached public product list and a product detail, direct to the catalog instance
  and through the gateway, with ``wrk`` (else a Python load generator);
* **checkout** — customers placing one-line orders through the gateway (and directly to the order
  service as the baseline); afterwards, from the order database: created→reserved latency, orders
  left pending (stranded), and whether the catalog's stock agrees with the orders reserved;
* **sign-in** — concurrent ``POST /api/v1/auth/token``, direct and through the gateway, counting
  the answers the gateway sheds (429/503 with ``Retry-After``) apart from successes.

CPU is read from /proc (utime + stime) summed over the processes that served the run: the catalog
per read, the gateway per hop, the auth service per sign-in and **every** platform process
(web, workers, beat) per order. CPU per request is the robust figure on a shared machine;
throughput and latency are reported beside it. Results go to ``docs/benchmarks.md`` (the table the
README links) and ``docs/capacity.md`` (:mod:`bazaar_devtools.capacity`).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import urllib3

from bazaar_devtools.bench_gateway import cpu_seconds, process_tree, run_python_load, run_wrk
from bazaar_devtools.platform import ROOT, Platform

DOCS = ROOT / "docs"
CATALOG_LIST = "/api/v1/catalog/products"


@dataclass
class Figure:
    """One measured run."""

    bench: str
    path: str  # "direct" or "gateway"
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_ms: float  # CPU per request of the processes named in ``cpu_of``
    cpu_of: str
    extra: dict[str, Any] = field(default_factory=dict)


# ------------------------------------------------------------------------------------------
# Helpers
# ------------------------------------------------------------------------------------------
def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


class CpuMeter:
    """CPU seconds used by a set of process trees between ``start`` and ``stop``."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self.used = 0.0
        self._before = 0.0

    def _now(self) -> float:
        return cpu_seconds([pid for root in self.pids for pid in process_tree(root)])

    def __enter__(self) -> CpuMeter:
        self._before = self._now()
        return self

    def __exit__(self, *exc: object) -> None:
        self.used = self._now() - self._before


def closed_loop(
    call: Callable[[urllib3.PoolManager, int], int], *, workers: int, seconds: float
) -> tuple[list[float], dict[int, int], float]:
    """``workers`` threads calling ``call`` back to back for ``seconds``; latencies and statuses."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def loop(index: int) -> None:
        http = urllib3.PoolManager(maxsize=1, retries=False, timeout=urllib3.Timeout(connect=2, read=15))
        mine: list[float] = []
        seen: dict[int, int] = {}
        count = 0
        while time.monotonic() < deadline:
            started = time.perf_counter()
            try:
                status = call(http, index * 1_000_000 + count)
            except urllib3.exceptions.HTTPError:
                status = 599
            count += 1
            mine.append((time.perf_counter() - started) * 1000)
            seen[status] = seen.get(status, 0) + 1
        with lock:
            latencies.extend(mine)
            for status, number in seen.items():
                statuses[status] = statuses.get(status, 0) + number

    started = time.monotonic()
    threads = [threading.Thread(target=loop, args=(index,)) for index in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, statuses, time.monotonic() - started


# ------------------------------------------------------------------------------------------
# The platform under test
# ------------------------------------------------------------------------------------------
class Bench:
    def __init__(
        self, platform: Platform, *, connections: int = 50, load: str = "auto", idle_seconds: float = 5.0
    ) -> None:
        self.platform = platform
        self.connections = connections
        self.idle_seconds = idle_seconds  # the idle baseline measured before each checkout run
        use_wrk = load == "wrk" or (load == "auto" and shutil.which("wrk"))
        self.load = run_wrk if use_wrk else run_python_load
        self.gateway_url = f"http://127.0.0.1:{platform.config.gateway_port}"
        self.http = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=2, read=30))
        self.figures: list[Figure] = []

    # --- processes ---------------------------------------------------------------------------
    def web(self, service: str) -> Any:
        return next(p for p in self.platform.procs if p.service == service and p.kind == "web" and p.alive)

    def pids(self, service: str | None = None) -> list[int]:
        return [
            p.popen.pid
            for p in self.platform.procs
            if p.alive and p.popen is not None and (service is None or p.service == service)
        ]

    # --- HTTP --------------------------------------------------------------------------------
    def call(self, method: str, url: str, token: str | None = None, body: Any = None) -> tuple[int, Any]:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        response = self.http.request(
            method, url, body=None if body is None else json.dumps(body).encode(), headers=headers
        )
        try:
            data = json.loads(response.data) if response.data else None
        except ValueError:
            data = None
        return response.status, data

    def token(self, email: str, password: str) -> str:
        status, data = self.call(
            "POST", f"{self.gateway_url}/api/v1/auth/token", body={"email": email, "password": password}
        )
        if status != 200:
            raise RuntimeError(f"sign-in of {email} failed: {status} {data}")
        return data["access"]

    def register(self, prefix: str) -> tuple[str, str]:
        email = f"{prefix}-{uuid.uuid4().hex[:10]}@bench.test"
        password = f"Pw-{uuid.uuid4().hex}"
        status, data = self.call(
            "POST", f"{self.gateway_url}/api/v1/auth/register", body={"email": email, "password": password}
        )
        if status != 201:
            raise RuntimeError(f"registration failed: {status} {data}")
        return email, password

    # --- reads -------------------------------------------------------------------------------
    def reads(self, seconds: float, rounds: int) -> None:
        status, page = self.call("GET", f"{self.gateway_url}{CATALOG_LIST}")
        if status != 200 or not page["results"]:
            raise RuntimeError(f"the catalog list answered {status}")
        detail = f"{CATALOG_LIST}/{page['results'][0]['id']}"
        catalog = self.web("catalog")
        for name, path in (("product list", CATALOG_LIST), ("product detail", detail)):
            self.load("warm-up", catalog.url + path, {}, 1, self.connections, 2)
            self.load("warm-up", self.gateway_url + path, {}, 1, self.connections, 2)
            runs: dict[str, list[Figure]] = {"direct": [], "gateway": []}
            for _ in range(rounds):
                for side, base in (("direct", catalog.url), ("gateway", self.gateway_url)):
                    with CpuMeter(self.pids("catalog")) as service_cpu, CpuMeter(self.pids("gateway")) as hop_cpu:
                        result = self.load(side, base + path, {}, seconds, self.connections, 2)
                    count = max(1, result.requests)
                    figure = Figure(
                        f"read: {name}", side, result.requests, result.seconds, result.rps, result.p50_ms,
                        result.p99_ms, result.errors, round(service_cpu.used * 1000 / count, 3), "catalog",
                    )  # fmt: skip
                    if side == "gateway":
                        figure.extra["gateway_cpu_ms"] = round(hop_cpu.used * 1000 / count, 3)
                    runs[side].append(figure)
            self.figures.append(median(runs["direct"]))
            self.figures.append(median(runs["gateway"]))

    # --- sign-in -----------------------------------------------------------------------------
    def signin(self, seconds: float, workers: int) -> None:
        accounts = [self.register("signin") for _ in range(workers)]
        auth = self.web("auth")
        for side, base in (("direct", auth.url), ("gateway", self.gateway_url)):
            url = f"{base}/api/v1/auth/token"
            bodies = [json.dumps({"email": e, "password": p}).encode() for e, p in accounts]

            def login(http: urllib3.PoolManager, n: int, url: str = url, bodies: list[bytes] = bodies) -> int:
                body = bodies[(n // 1_000_000) % len(bodies)]
                return http.request("POST", url, body=body, headers={"Content-Type": "application/json"}).status

            with CpuMeter(self.pids("auth")) as auth_cpu:
                latencies, statuses, took = closed_loop(login, workers=workers, seconds=seconds)
            ok = statuses.get(200, 0)
            shed = statuses.get(429, 0) + statuses.get(503, 0)
            self.figures.append(Figure(
                "sign-in", side, ok, took, ok / took, percentile(latencies, 0.5), percentile(latencies, 0.99),
                sum(statuses.values()) - ok - shed, round(auth_cpu.used * 1000 / max(1, ok), 3), "auth",
                {"shed": shed, "statuses": {str(k): v for k, v in sorted(statuses.items())}},
            ))  # fmt: skip

    # --- checkout ----------------------------------------------------------------------------
    def _merchant_token(self) -> str:
        from bazaar_common.demo import DEMO_MERCHANT, DEMO_PASSWORD

        return self.token(DEMO_MERCHANT.email, DEMO_PASSWORD)

    def _retire_product(self, product_id: int) -> None:
        """Out of the public catalog again, so the benchmark leaves the demo catalog as it was."""
        url = f"{self.gateway_url}/api/v1/catalog/merchant/products/{product_id}/deactivate"
        status, data = self.call("POST", url, self._merchant_token())
        if status != 200:
            raise RuntimeError(f"retiring the benchmark product failed: {status} {data}")

    def _bench_product(self, units: int) -> int:
        """A product of the demo merchant's with stock enough for the whole run."""
        token = self._merchant_token()
        _, page = self.call("GET", f"{self.gateway_url}{CATALOG_LIST}")
        merchant_id = page["results"][0]["merchant"]["id"]
        status, product = self.call(
            "POST", f"{self.gateway_url}/api/v1/catalog/merchant/products", token,
            {"merchant_id": merchant_id, "sku": f"BENCH-{uuid.uuid4().hex[:8]}", "name": "Benchmark item",
             "price": "1.00", "initial_stock": units, "is_active": True},
        )  # fmt: skip
        if status != 201:
            raise RuntimeError(f"creating the benchmark product failed: {status} {product}")
        return product["id"]

    def checkout(self, seconds: float, workers: int, direct_seconds: float) -> None:
        customers = [self.token(*self.register("buyer")) for _ in range(workers)]
        product_id = self._bench_product(10_000_000)
        try:
            self._checkout(product_id, customers, seconds, workers, direct_seconds)
        finally:
            self._retire_product(product_id)

    def _checkout(
        self, product_id: int, customers: list[str], seconds: float, workers: int, direct_seconds: float
    ) -> None:
        available_before = self._available(product_id)
        orders = self.web("orders")
        placed: list[str] = []
        lock = threading.Lock()
        for side, base, duration in (("direct", orders.url, direct_seconds), ("gateway", self.gateway_url, seconds)):
            url = f"{base}/api/v1/orders"
            body = json.dumps({"items": [{"product_id": product_id, "quantity": 1}]}).encode()
            mine: list[str] = []

            def order(
                http: urllib3.PoolManager, n: int, url: str = url, body: bytes = body, mine: list[str] = mine
            ) -> int:
                headers = {
                    "Content-Type": "application/json",
                    "Authorization": f"Bearer {customers[(n // 1_000_000) % len(customers)]}",
                    "Idempotency-Key": uuid.uuid4().hex,
                }
                response = http.request("POST", url, body=body, headers=headers)
                if response.status == 202:
                    with lock:
                        mine.append(json.loads(response.data)["id"])
                return response.status

            meters = {p.name: CpuMeter([p.popen.pid]) for p in self.platform.procs if p.alive and p.popen}
            idle_ms_per_second = self._idle_cpu_ms_per_second()
            work_before = self._work_counters()
            measured_from = time.monotonic()
            with CpuMeter(self.pids()) as platform_cpu:
                for meter in meters.values():
                    meter.__enter__()
                latencies, statuses, took = closed_loop(order, workers=workers, seconds=duration)
                settled = self._wait_settled(mine, timeout=30)
                for meter in meters.values():
                    meter.__exit__()
            work_after = self._work_counters()
            # What the platform burns with no order at all (relay and publisher polls, beat, the
            # expiry sweep, heartbeats) is in the figure too; at a few orders a second it is a
            # large share of it, so the net cost of an order is reported beside it.
            idle_share = idle_ms_per_second * (time.monotonic() - measured_from)
            settled["idle_cpu_ms_per_second"] = round(idle_ms_per_second, 1)
            settled["cpu_ms_per_order_net_of_idle"] = round(
                max(0.0, platform_cpu.used * 1000 - idle_share) / max(1, len(mine)), 2
            )
            # Where an order's CPU goes, per process (the profile the issue asks for).
            settled["cpu_ms_by_process"] = {
                name: round(meter.used * 1000 / max(1, len(mine)), 2) for name, meter in meters.items()
            }
            # What every order made the platform do, counted by the servers (unlike CPU time, the
            # same on a busy machine as on an idle one; includes the idle work of the run).
            settled["work_per_order"] = {
                name: round((work_after[name] - work_before[name]) / max(1, len(mine)), 2) for name in work_after
            }
            placed.extend(mine)
            accepted = statuses.get(202, 0)
            self.figures.append(Figure(
                "checkout", side, accepted, took, accepted / took, percentile(latencies, 0.5),
                percentile(latencies, 0.99), sum(statuses.values()) - accepted,
                round(platform_cpu.used * 1000 / max(1, accepted), 3), "every platform process",
                {**settled, "statuses": {str(k): v for k, v in sorted(statuses.items())}},
            ))  # fmt: skip
        reserved = self._order_rows(placed, only_reserved=True)
        available_after = self._available(product_id)
        self.figures[-1].extra["stock_agrees"] = available_before - available_after == len(reserved)
        self.figures[-1].extra["stock_change"] = available_before - available_after
        self.figures[-1].extra["reserved_units"] = len(reserved)

    def _idle_cpu_ms_per_second(self) -> float:
        """CPU the whole platform uses per second while nobody sends it anything."""
        with CpuMeter(self.pids()) as idle:
            time.sleep(self.idle_seconds)
        return idle.used * 1000 / self.idle_seconds

    def _work_counters(self) -> dict[str, int]:
        """PostgreSQL sessions opened and transactions committed in the platform's databases (from
        ``pg_stat_database``), and commands the platform's Redis processed."""
        import psycopg2
        import redis

        counters: dict[str, int] = {}
        urls = [self.platform.database_url(spec) for spec in _specs()]
        if urls[0].startswith("postgres"):
            connection = psycopg2.connect(urls[0].rsplit("/", 1)[0] + "/postgres")
            connection.autocommit = True
            try:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_stat_clear_snapshot()")
                    cursor.execute(
                        "SELECT COALESCE(SUM(sessions), 0), COALESCE(SUM(xact_commit), 0) FROM pg_stat_database"
                        " WHERE datname = ANY(%s)",
                        [[url.rsplit("/", 1)[1] for url in urls]],
                    )
                    row = cursor.fetchone()
                    assert row is not None  # an aggregate always answers one row
                    sessions, commits = row
            finally:
                connection.close()
            counters |= {"pg_sessions": int(sessions), "pg_commits": int(commits)}
        client = redis.Redis.from_url(self.platform.redis_url)
        try:
            counters["redis_commands"] = int(client.info("stats")["total_commands_processed"])
        finally:
            client.close()
        return counters

    def _available(self, product_id: int) -> int:
        status, product = self.call("GET", f"{self.web('catalog').url}{CATALOG_LIST}/{product_id}")
        if status != 200:
            raise RuntimeError(f"product {product_id} answered {status}")
        return int(product["available"])

    def _order_rows(self, ids: list[str], *, only_reserved: bool = False) -> list[tuple[str, float | None]]:
        """(status, seconds from created to reserved) of the given orders, from the order database."""
        if not ids:
            return []
        url = self.platform.database_url(next(s for s in _specs() if s.name == "orders"))
        rows: list[tuple[str, Any, Any]] = []
        for start in range(0, len(ids), 1000):
            chunk = ids[start : start + 1000]
            rows.extend(_query(url, chunk))
        result = []
        for status, created, reserved in rows:
            if only_reserved and reserved is None:
                continue
            delay = None if reserved is None else (_as_datetime(reserved) - _as_datetime(created)).total_seconds()
            result.append((status, delay))
        return result

    def _wait_settled(self, ids: list[str], timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            rows = self._order_rows(ids)
            pending = sum(1 for status, _ in rows if status == "pending")
            if pending == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        delays = [delay for _, delay in rows if delay is not None]
        statuses: dict[str, int] = {}
        for status, _ in rows:
            statuses[status] = statuses.get(status, 0) + 1
        return {
            "reserved_p50_ms": round(percentile(delays, 0.5) * 1000, 1),
            "reserved_p99_ms": round(percentile(delays, 0.99) * 1000, 1),
            "stranded": pending,
            "order_statuses": statuses,
        }


def _specs() -> Any:
    from bazaar_devtools.platform import ALL_PROJECTS

    return ALL_PROJECTS


def _as_datetime(value: Any) -> Any:
    from datetime import datetime

    if isinstance(value, str):
        return datetime.fromisoformat(value)
    return value


def _query(url: str, ids: list[str]) -> list[tuple[str, Any, Any]]:
    sql = "SELECT status, created_at, reserved_at FROM orders_order WHERE id IN ({})"
    normalized = [str(uuid.UUID(value)) for value in ids]
    if url.startswith("sqlite"):
        import sqlite3

        connection = sqlite3.connect(url.removeprefix("sqlite:///"), timeout=20)
        try:
            hexes = [uuid.UUID(value).hex for value in normalized]
            return connection.execute(sql.format(",".join("?" * len(hexes))), hexes).fetchall()
        finally:
            connection.close()
    import psycopg2

    pg = psycopg2.connect(url)
    try:
        with pg.cursor() as cursor:
            cursor.execute(sql.format(",".join(["%s"] * len(normalized))), normalized)
            return cursor.fetchall()
    finally:
        pg.close()


def median(figures: list[Figure]) -> Figure:
    """The run with the median CPU per request (the robust figure); the others are noise."""
    return sorted(figures, key=lambda figure: figure.cpu_ms)[len(figures) // 2]


# ------------------------------------------------------------------------------------------
# Report
# ------------------------------------------------------------------------------------------
TARGETS = {
    "read: product list": "catalog ≤ 0.5 ms CPU, hop ≤ 0.35 ms, ≥ 0.95× direct, ≥ 1,500 req/s, p99 ≤ 50 ms",
    "read: product detail": "as the list",
    "checkout": "≥ 100 orders/s, p99 ≤ 500 ms, created→reserved p99 ≤ 1 s, ≤ 15 ms CPU per order",
    "sign-in": "≥ 20 sign-ins/s, p99 ≤ 1 s, excess shed with 429/503",
}


def summary(figures: list[Figure]) -> dict[str, Any]:
    """Per benchmark: the through/direct ratio and the CPU figures the capacity model uses."""
    out: dict[str, Any] = {}
    for bench in dict.fromkeys(f.bench for f in figures):
        direct = next((f for f in figures if f.bench == bench and f.path == "direct"), None)
        through = next((f for f in figures if f.bench == bench and f.path == "gateway"), None)
        entry: dict[str, Any] = {}
        if direct and through and direct.rps:
            entry["ratio"] = round(through.rps / direct.rps, 3)
        if through:
            entry["cpu_ms"] = through.cpu_ms
            entry["gateway_cpu_ms"] = through.extra.get("gateway_cpu_ms")
        out[bench] = entry
    return out


def table(figures: list[Figure]) -> str:
    facts = summary(figures)
    lines = [
        "| benchmark | path | req/s | p50 ms | p99 ms | errors | CPU ms / request | gateway hop CPU ms"
        " | through/direct | notes |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for f in figures:
        notes = []
        for key in (
            "reserved_p50_ms", "reserved_p99_ms", "stranded", "stock_agrees", "shed",
            "idle_cpu_ms_per_second", "cpu_ms_per_order_net_of_idle",
        ):  # fmt: skip
            if key in f.extra:
                notes.append(f"{key.replace('_', ' ')} {f.extra[key]}")
        ratio = facts[f.bench].get("ratio") if f.path == "gateway" else None
        hop = f.extra.get("gateway_cpu_ms")
        lines.append(
            f"| {f.bench} | {f.path} | {f.rps:.0f} | {f.p50_ms:.1f} | {f.p99_ms:.1f} | {f.errors} | "
            f"{f.cpu_ms:.3f} ({f.cpu_of}) | {'' if hop is None else f'{hop:.3f}'} | "
            f"{'' if ratio is None else f'{ratio:.2f}×'} | {', '.join(notes)} |"
        )
    return "\n".join(lines)


def write_docs(figures: list[Figure], context: str, directory: Path = DOCS) -> None:
    from bazaar_devtools.capacity import write_capacity

    directory.mkdir(exist_ok=True)
    targets = "\n".join(f"- **{name}**: {text}" for name, text in TARGETS.items())
    (directory / "benchmarks.md").write_text(
        "# Platform benchmark\n\n"
        "Written by `make bench` (`devtools/bazaar_devtools/bench.py`); do not edit by hand.\n\n"
        f"{context}\n\n{table(figures)}\n\nTargets (issue 15):\n\n{targets}\n\n"
        "CPU is utime + stime from /proc over the processes named, divided by the requests served;\n"
        "on a shared machine it is the robust figure, throughput and latency are indicative.\n\n"
        "```json\n" + json.dumps([asdict(f) for f in figures], indent=2, default=str) + "\n```\n"
    )
    write_capacity(figures_by_bench(figures), context, directory)


def figures_by_bench(figures: list[Figure]) -> dict[str, dict[str, Any]]:
    return {f"{f.bench}|{f.path}": asdict(f) for f in figures}


def run(bench: Bench, args: argparse.Namespace) -> list[Figure]:
    bench.reads(args.read_seconds, args.rounds)
    if args.checkout_seconds > 0:
        bench.checkout(args.checkout_seconds, args.checkout_workers, args.checkout_direct_seconds)
    bench.signin(args.signin_seconds, args.signin_workers)
    return bench.figures


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--read-seconds", type=float, default=8)
    parser.add_argument("--rounds", type=int, default=2, help="rounds per read benchmark (median kept)")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--checkout-seconds", type=float, default=60)
    parser.add_argument("--checkout-direct-seconds", type=float, default=15)
    parser.add_argument("--checkout-workers", type=int, default=32)
    parser.add_argument("--signin-seconds", type=float, default=10)
    parser.add_argument("--signin-workers", type=int, default=8)
    parser.add_argument("--load", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/ alone")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    database_url = os.environ.get("DATABASE_URL", "")
    if not database_url.startswith("postgres"):
        print(
            "make bench measures the platform on PostgreSQL: set DATABASE_URL, e.g.\n"
            "  DATABASE_URL=postgres://postgres@127.0.0.1:5432/bazaar make bench",
            file=sys.stderr,
        )
        return 2
    from bazaar_devtools.e2e import e2e_config
    from bazaar_devtools.platform import drop_postgres_database

    work = Path(tempfile.mkdtemp(prefix="bazaar-bench-"))
    config, databases = e2e_config(work)
    config.extra_env = {**BENCH_ENV}
    config.debug = False  # measured as deployed: DEBUG's query log and checks cost CPU on every query
    platform = Platform(config)
    load_before = " ".join(f"{value:.2f}" for value in os.getloadavg())
    try:
        platform.start_redis_if_needed()
        platform.prepare_databases()
        platform.seed_demo_data()
        platform.start_all()
        figures = run(Bench(platform, connections=args.connections, load=args.load), args)
    finally:
        platform.shutdown()
        for url in databases:
            drop_postgres_database(url)
        shutil.rmtree(work, ignore_errors=True)
    context = (
        f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {os.cpu_count()} CPUs, load average before "
        f"{load_before}; one instance of every service, {args.connections} connections for reads, "
        f"{args.checkout_workers} customers checking out, {args.signin_workers} concurrent sign-ins."
    )
    print()
    print(context)
    print(table(figures))
    print(json.dumps(summary(figures), indent=2))
    for figure in figures:
        if "cpu_ms_by_process" in figure.extra:
            print(f"checkout ({figure.path}) CPU ms per order by process: {figure.extra['cpu_ms_by_process']}")
            print(f"checkout ({figure.path}) work per order: {figure.extra.get('work_per_order')}")
    if not args.no_write:
        write_docs(figures, context)
        print(f"\nwritten: {DOCS / 'benchmarks.md'}, {DOCS / 'capacity.md'}")
    return 0


# Rate limits out of the way (the benchmark is one client address); access logs off as in a
# production gateway that ships logs from the ingress.
BENCH_ENV = {
    "GATEWAY_RATE_LIMITS": "anonymous=100000000/60,user=100000000/60,login=100000000/60,checkout=100000000/60",
    # Every benchmark customer registers from 127.0.0.1 (production allows 20 per address).
    "REGISTER_MAX_PER_ADDRESS": "100000",
    "LOG_LEVEL": "WARNING",
}

if __name__ == "__main__":
    raise SystemExit(main())
