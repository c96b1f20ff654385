"""The capacity model: measured CPU per read, per order and per sign-in → cores and pods for a peak.

Written to ``docs/capacity.md`` by ``make bench`` (:mod:`bazaar_devtools.bench`) from the figures of
that run, so the model always uses the platform's current costs. The peak and the assumptions are
constants here, stated in the document.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

DOCS = Path(__file__).resolve().parents[2] / "docs"

# Today's peak, per second, as the problem statement's traffic mix (browsing dominates); the plan
# is for 300 % of it. Change these when the real peak is known; the document is regenerated.
TODAY_PEAK = {"reads": 500.0, "orders": 25.0, "signins": 10.0}
PEAK_FACTOR = 3.0
# A pod is planned at this share of its CPU limit at peak, leaving room for bursts and a lost pod.
TARGET_UTILISATION = 0.6
CORES_PER_POD = 1.0


# PostgreSQL connections a process can hold: bazaar_devtools.connections (measured by the e2e test
# tests/e2e/test_connection_budget.py and by make bench-connections, whose last figures are in
# docs/connections.json).
CHART_WEB = {"workers": 2, "threads": 8}  # charts/bazaar/values.yaml <service>.web
LAUNCHER_WEB = {"workers": 1, "threads": 8}  # make up (bazaar_devtools.platform)
WORKER_CONCURRENCY = 2
DB_SERVICES = ("auth", "catalog", "orders", "profiles")
POSTGRES_DEFAULT_MAX_CONNECTIONS = 100
CONNECTION_HEADING = "## Database connections per process"


def connection_lines(measured: dict[str, Any] | None) -> list[str]:
    from bazaar_devtools.connections import WEB_EXTRA_PER_PROCESS, WORKER_EXTRA, web_budget, worker_budget

    chart_web = web_budget("catalog", **CHART_WEB)
    launcher_web = web_budget("catalog", **LAUNCHER_WEB)
    worker = worker_budget(concurrency=WORKER_CONCURRENCY)
    direct_ten = 10 * len(DB_SERVICES) * (chart_web + worker)
    lines = [
        CONNECTION_HEADING,
        "",
        "The budget (`bazaar_devtools/connections.py`; `tests/e2e/test_connection_budget.py` fails when a "
        "process of the running platform holds more, counted in `pg_stat_activity` under load):",
        "",
        "| process | connections held at most | why |",
        "|---|---:|---|",
        f"| web instance of auth, catalog, orders, profiles | workers × (threads + {WEB_EXTRA_PER_PROCESS}): "
        f"{chart_web} in the chart (2 × 8 threads), {launcher_web} in `make up` (1 × 8) | one per request thread, "
        "kept `DB_CONN_MAX_AGE` = 60 s so a request pays no PostgreSQL backend start; `/readyz` runs in a request "
        "thread and uses that thread's connection (it opens none of its own); plus the outbox publisher thread, "
        "which gives its connection back whenever nothing waits to be published |",
        "| gateway web instance | 0 held (while `/readyz` or an admin page runs: one for that request) | its database "
        "serves only its admin (`CONN_MAX_AGE` 0): the proxy path never touches it; a `/readyz` or admin request "
        "closes what it opened when it ends |",
        f"| Celery worker | concurrency + {WORKER_EXTRA} = {worker} | one per pool process or thread, the outbox "
        "relay thread, the outbox-backlog metric's query (closed after each scrape), the outbox publisher thread "
        "that sends a task's replies after its commit (given back when idle) |",
        "| beat (thread or process) | 0 | it only sends the periodic tasks |",
        "",
        f"Without a pooler, ten instances of every service need up to 10 × {len(DB_SERVICES)} × ({chart_web} + "
        f"{worker}) = **{direct_ten}** connections with the chart's defaults, far over PostgreSQL's default "
        f"{POSTGRES_DEFAULT_MAX_CONNECTIONS}. Behind the chart's PgBouncer (`pgbouncer.enabled`, transaction mode, "
        "docs/deploy.md) the server side is capped at `pgbouncer.replicas × databases × (defaultPoolSize + "
        "reservePoolSize)` = 2 × 5 × (5 + 2) = 70 whatever the number of pods; the chart refuses values whose cap "
        "exceeds `postgres.maxConnections − reservedConnections`.",
        "",
    ]
    if measured:
        kinds = measured.get("client_peak_per_process_by_kind", {})
        by_db = measured.get("server_peak_by_database", {})
        lines += [
            "### Measured: ten instances of every service behind PgBouncer",
            "",
            f"`make bench-connections`, {measured['when']}: {measured['instances_per_service']} web instances of "
            f"each of the five services and {measured['workers_per_service']} Celery workers of each of the four "
            f"({measured['processes']} processes, `make up`'s 1 worker × 8 threads per web instance, thread-pool "
            f"workers of concurrency 2), through {measured['pgbouncer_replicas']} PgBouncer processes running the "
            "chart's rendered `pgbouncer.ini` (default pool values), PostgreSQL 15 on this 2-core machine. Load for "
            f"{measured['seconds']:.0f} s: {measured['readiness_requests']} `/readyz` requests round robin over every "
            f"web instance and {measured['orders_placed']} orders through the gateway; "
            f"{measured['errors']} errors; {measured['samples']} samples of `pg_stat_activity`.",
            "",
            *([measured["note"], ""] if measured.get("note") else []),
            "| figure | connections |",
            "|---|---:|",
            f"| PostgreSQL, all the platform's databases (peak) | **{measured['server_peak_total']}** "
            f"(cap {measured['pgbouncer_server_cap']}, default max_connections {POSTGRES_DEFAULT_MAX_CONNECTIONS}) |",
        ]
        lines += [f"| PostgreSQL, {name} database (peak) | {count} |" for name, count in sorted(by_db.items())]
        lines += [
            f"| held by the platform's processes on PgBouncer (peak; what PostgreSQL would see without it) | "
            f"{measured['client_peak_total']} |",
        ]
        lines += [f"| one {kind} (peak) | {count} |" for kind, count in sorted(kinds.items())]
        lines.append("")
    return lines


def load_measured_connections(directory: Path = DOCS) -> dict[str, Any] | None:
    path = directory / "connections.json"
    return json.loads(path.read_text()) if path.exists() else None


def write_connection_section(measured: dict[str, Any] | None, directory: Path = DOCS) -> None:
    """Replace the connections section of docs/capacity.md (the rest is make bench's)."""
    path = directory / "capacity.md"
    text = path.read_text() if path.exists() else "# Capacity model\n\n"
    head = text.split(CONNECTION_HEADING)[0].rstrip("\n") + "\n\n"
    path.write_text(head + "\n".join(connection_lines(measured)))


def _cpu(figures: dict[str, dict[str, Any]], key: str, field: str = "cpu_ms") -> float:
    figure = figures.get(key)
    if figure is None:
        return 0.0
    if field == "cpu_ms":
        return float(figure["cpu_ms"])
    return float(figure["extra"].get(field) or 0.0)


def model(figures: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows of (what, rate at the planned peak, CPU ms each, cores, pods)."""
    read_service = _cpu(figures, "read: product list|direct")
    read_hop = _cpu(figures, "read: product list|gateway", "gateway_cpu_ms")
    order_cpu = _cpu(figures, "checkout|gateway")
    signin_cpu = _cpu(figures, "sign-in|direct")
    signin_hop = max(0.0, _cpu(figures, "sign-in|gateway") - signin_cpu) if signin_cpu else 0.0
    peak = {name: rate * PEAK_FACTOR for name, rate in TODAY_PEAK.items()}
    rows = [
        ("catalog (reads)", peak["reads"], read_service),
        ("gateway (read hops)", peak["reads"], read_hop),
        ("whole platform per order (web + workers)", peak["orders"], order_cpu),
        ("auth (sign-ins, Argon2id)", peak["signins"], signin_cpu),
        ("gateway (sign-in hops)", peak["signins"], signin_hop),
    ]
    out = []
    for name, rate, cpu_ms in rows:
        cores = rate * cpu_ms / 1000
        pods = max(2, math.ceil(cores / (CORES_PER_POD * TARGET_UTILISATION)))
        out.append({"what": name, "rate": rate, "cpu_ms": cpu_ms, "cores": cores, "pods": pods})
    return out


def write_capacity(figures: dict[str, dict[str, Any]], context: str, directory: Path = DOCS) -> None:
    rows = model(figures)
    total = sum(row["cores"] for row in rows)
    lines = [
        "# Capacity model",
        "",
        "Written by `make bench` from the CPU it measured (`devtools/bazaar_devtools/capacity.py`);",
        "do not edit by hand — change the assumptions in that file and re-run the benchmark.",
        "",
        f"Measured: {context}",
        "",
        "## Assumptions",
        "",
        "- Today's peak (assumed; the problem statement gives only the factor): "
        f"{TODAY_PEAK['reads']:.0f} catalog reads/s, {TODAY_PEAK['orders']:.0f} orders/s, "
        f"{TODAY_PEAK['signins']:.0f} sign-ins/s; planned for **{PEAK_FACTOR * 100:.0f} %** of it.",
        "- Reads are cached product lists and details (the cache hit path); misses cost more, "
        "a cold catalog is warmed within seconds by the first readers.",
        "- CPU per order counts every process of the platform (gateway, order, catalog, auth, "
        "profile web instances and all Celery workers) over the run, divided by the orders accepted.",
        "- Sign-in cost is Argon2id at the parameters in `auth_service/auth_service/accounts/hashers.py` "
        "(m = 19 MiB, t = 2, p = 1).",
        f"- A pod has {CORES_PER_POD:g} core and is planned at {TARGET_UTILISATION * 100:.0f} % of it at peak; "
        "at least 2 pods per service for availability.",
        "- CPU measured on the benchmark machine; scale by the ratio of single-core speed for other hardware.",
        "",
        "## Cores and pods at the planned peak",
        "",
        "| what | rate /s at peak | CPU ms each | cores | pods |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['what']} | {row['rate']:.0f} | {row['cpu_ms']:.3f} | {row['cores']:.2f} | {row['pods']} |"
        )
    lines += [
        "",
        f"Total CPU at the planned peak: **{total:.2f} cores**.",
        "",
        *connection_lines(load_measured_connections(directory)),
    ]
    directory.mkdir(exist_ok=True)
    (directory / "capacity.md").write_text("\n".join(lines))
