"""The capacity model: measured CPU per read, per order and per sign-in → cores and pods for a peak.

Written to ``docs/capacity.md`` by ``make bench`` (:mod:`bazaar_devtools.bench`) from the figures of
that run, so the model always uses the platform's current costs. The peak and the assumptions are
constants here, stated in the document.
"""

from __future__ import annotations

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


# PostgreSQL connections a process can hold (bazaar_common.settings.database_config): Django keeps
# one per thread that used the database, for DB_CONN_MAX_AGE seconds.
WEB_THREADS = 8
WORKER_CONCURRENCY = 2
DB_SERVICES = ("auth", "catalog", "orders", "profiles")
POSTGRES_DEFAULT_MAX_CONNECTIONS = 100

CONNECTION_BUDGET = [
    "## Database connections per process",
    "",
    "| process | connections held at most | why |",
    "|---|---:|---|",
    f"| web instance of auth, catalog, orders, profiles | {WEB_THREADS} (`WEB_THREADS`) | one per request thread, "
    "kept `DB_CONN_MAX_AGE` = 60 s so a request pays no PostgreSQL backend start |",
    "| gateway instance | 0 held (1 while an admin page or /readyz runs) | its database serves only its admin: "
    "`CONN_MAX_AGE` 0; the proxy path never touches it |",
    f"| Celery worker | {WORKER_CONCURRENCY} + 1 with beat (`--concurrency`) | one per pool process |",
    "",
    f"One instance of every service: {len(DB_SERVICES)} × ({WEB_THREADS} + {WORKER_CONCURRENCY + 1}) = "
    f"{len(DB_SERVICES) * (WEB_THREADS + WORKER_CONCURRENCY + 1)} connections at most. "
    f"**Ten instances of every service do not fit** PostgreSQL's default "
    f"{POSTGRES_DEFAULT_MAX_CONNECTIONS} directly "
    f"({10 * len(DB_SERVICES) * (WEB_THREADS + WORKER_CONCURRENCY)} and more): run them behind PgBouncer in "
    "transaction mode (the chart's optional PgBouncer, issue 14), where the server side needs only as many "
    "connections as queries run at once (≈ cores × 2 per PostgreSQL), or lower `WEB_THREADS` and "
    "`DB_CONN_MAX_AGE` per deployment. Django's built-in pool needs psycopg 3; the design card names "
    "psycopg2, and it was not replaced.",
    "",
]


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
    lines += ["", f"Total CPU at the planned peak: **{total:.2f} cores**.", "", *CONNECTION_BUDGET]
    directory.mkdir(exist_ok=True)
    (directory / "capacity.md").write_text("\n".join(lines))
