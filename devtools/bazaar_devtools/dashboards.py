"""The Grafana dashboards, as code: ``python -m bazaar_devtools.dashboards`` writes them to
``charts/bazaar/files/dashboards/`` (the chart ships that folder as a ConfigMap for Grafana's
dashboard sidecar); ``--check`` says whether the files there are what this module makes (a test
runs it, so a hand edit of the JSON or a change here without regenerating fails).

* **Platform overview** — the four golden signals per service;
* **Gateway edge** — requests, latency, upstream attempts, breakers, rotation, rate limits;
* **Saga and queues** — tasks, queues, outbox, order transitions, reservations, re-drives;
* **one per service** (auth, catalog, orders, profiles) — its traffic at the edge and its own
  golden signals, its dependencies, its calls to other services, its worker, queue and outbox, and
  what only it measures (order transitions and saga steps; stock reservations).

Series carry ``service`` and ``role`` from the scrape (the PodMonitor, or ``make up``'s
Prometheus); a client-side metric names the called service ``upstream``.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bazaar_devtools.platform import ROOT, SERVICES

DIRECTORY = ROOT / "charts" / "bazaar" / "files" / "dashboards"
RATE = "[5m]"


@dataclass(frozen=True)
class Panel:
    title: str
    unit: str
    targets: tuple[tuple[str, str], ...]  # (PromQL, legend)


def panel(title: str, unit: str, *targets: tuple[str, str]) -> Panel:
    return Panel(title, unit, targets)


def dashboard(uid: str, title: str, panels: list[Panel]) -> dict[str, Any]:
    """Grafana's JSON model: two panels a row, each a time series on the chosen Prometheus."""
    return {
        "uid": uid,
        "title": title,
        "tags": ["bazaar"],
        "schemaVersion": 39,
        "version": 1,
        "editable": False,
        "time": {"from": "now-1h", "to": "now"},
        "refresh": "30s",
        "templating": {"list": [{"name": "datasource", "type": "datasource", "query": "prometheus"}]},
        "panels": [
            {
                "id": number,
                "type": "timeseries",
                "title": item.title,
                "datasource": {"type": "prometheus", "uid": "${datasource}"},
                "gridPos": {"h": 8, "w": 12, "x": 12 * ((number - 1) % 2), "y": 8 * ((number - 1) // 2)},
                "fieldConfig": {"defaults": {"unit": item.unit}, "overrides": []},
                "targets": [
                    {"refId": chr(ord("A") + index), "expr": expr, "legendFormat": legend}
                    for index, (expr, legend) in enumerate(item.targets)
                ],
            }
            for number, item in enumerate(panels, start=1)
        ],
    }


def quantile(q: float, metric: str, by: str, selector: str = "") -> str:
    return f"histogram_quantile({q}, sum by ({by}, le) (rate({metric}_bucket{selector}{RATE})))"


def ratio(numerator: str, denominator: str, by: str) -> str:
    return f"sum by ({by}) (rate({numerator}{RATE})) / clamp_min(sum by ({by}) (rate({denominator}{RATE})), 1e-9)"


PLATFORM_OVERVIEW = dashboard(
    "bazaar-overview",
    "Bazaar / Platform overview (golden signals)",
    [
        panel("Traffic: requests per second by service", "reqps",
              ("sum by (service) (rate(django_http_requests_total_by_view_transport_method_total[5m]))",
               "{{service}}")),
        panel("Errors: 5xx share by service", "percentunit",
              (ratio('django_http_responses_total_by_status_view_method_total{status=~"5.."}',
                     "django_http_responses_total_by_status_view_method_total", "service"), "{{service}}")),
        panel("Latency: p95 by service", "s",
              (quantile(0.95, "django_http_requests_latency_seconds_by_view_method", "service"), "{{service}}")),
        panel("Saturation: queue depth and outbox age", "short",
              ("max by (queue) (bazaar_queue_depth_messages)", "queue {{queue}}"),
              ("max by (service) (bazaar_outbox_oldest_unpublished_age_seconds)", "outbox {{service}} (s)")),
        panel("Processes up", "short", ("sum by (service, role) (up)", "{{service}} {{role}}")),
    ],
)  # fmt: skip

GATEWAY_EDGE = dashboard(
    "bazaar-gateway",
    "Bazaar / Gateway edge",
    [
        panel("Requests by route and status class", "reqps",
              ("sum by (route, status_class) (rate(bazaar_gateway_requests_total[5m]))", "{{route}} {{status_class}}")),
        panel("Latency p50 / p95 / p99 by route", "s",
              *((quantile(q, "bazaar_gateway_request_duration_seconds", "route"), f"{{{{route}}}} p{int(q * 100)}")
                for q in (0.5, 0.95, 0.99))),
        panel("Upstream attempts by outcome, retries", "ops",
              ("sum by (upstream, outcome) (rate(bazaar_upstream_attempts_total[5m]))", "{{upstream}} {{outcome}}"),
              ("sum by (upstream) (rate(bazaar_upstream_retries_total[5m]))", "{{upstream}} retries"),
              ("sum by (upstream) (rate(bazaar_retry_budget_exhausted_total[5m]))", "{{upstream}} budget exhausted")),
        panel("Breaker state (0 closed, 1 half-open, 2 open)", "short",
              ("max by (upstream, kind, instance) (bazaar_circuit_breaker_state)",
               "{{upstream}} {{kind}} {{instance}}")),
        panel("Instances registered / in rotation", "short",
              ("max by (upstream) (bazaar_instances_registered)", "{{upstream}} registered"),
              ("max by (upstream) (bazaar_instances_in_rotation)", "{{upstream}} in rotation")),
        panel("Rate-limit refusals", "reqps",
              ("sum by (rate_class) (rate(bazaar_gateway_rate_limited_total[5m]))", "{{rate_class}}")),
    ],
)  # fmt: skip

SAGA_AND_QUEUES = dashboard(
    "bazaar-saga",
    "Bazaar / Saga and queues",
    [
        panel("Celery tasks by name and outcome", "ops",
              ("sum by (task, outcome) (rate(bazaar_celery_tasks_total[5m]))", "{{task}} {{outcome}}")),
        panel("Task duration p95", "s", (quantile(0.95, "bazaar_celery_task_duration_seconds", "task"), "{{task}}")),
        panel("Queue depth", "short", ("max by (queue) (bazaar_queue_depth_messages)", "{{queue}}")),
        panel("Outbox backlog", "short",
              ("max by (service) (bazaar_outbox_unpublished_messages)", "{{service}} unpublished"),
              ("max by (service) (bazaar_outbox_oldest_unpublished_age_seconds)", "{{service}} oldest (s)")),
        panel("Order transitions", "ops",
              ("sum by (from_state, to_state) (rate(bazaar_order_transitions_total[5m]))",
               "{{from_state}} → {{to_state}}")),
        panel("Stock reservations by outcome", "ops",
              ("sum by (outcome, reason) (rate(bazaar_stock_reservations_total[5m]))", "{{outcome}} {{reason}}")),
        panel("Duplicates skipped, re-drives, dead letters", "ops",
              ("sum by (task) (rate(bazaar_consumer_duplicates_skipped_total[5m]))", "dup {{task}}"),
              ("sum by (step) (rate(bazaar_saga_redrives_total[5m]))", "redrive {{step}}"),
              ("sum by (task) (rate(bazaar_dead_letters_total[5m]))", "dead {{task}}")),
        panel("Overdue steps, settled, repairs", "short",
              ("sum by (step) (bazaar_saga_overdue_steps)", "overdue {{step}}"),
              ("sum by (step, outcome) (increase(bazaar_saga_settled_total[1h]))", "settled {{step}} {{outcome}}"),
              ("sum by (kind) (increase(bazaar_reconciliation_repairs_total[1h]))", "repair {{kind}}")),
    ],
)  # fmt: skip


def service_panels(service: str) -> list[Panel]:
    """What every service's dashboard shows, for ``service``'s own series."""
    own = f'service="{service}"'
    web = f'{{{own},role="web"}}'
    return [
        panel("At the edge: requests by route and status class", "reqps",
              (f'sum by (route, status_class) (rate(bazaar_gateway_requests_total{{upstream="{service}"}}[5m]))',
               "{{route}} {{status_class}}")),
        panel("At the edge: latency p95 by route", "s",
              (quantile(0.95, "bazaar_gateway_request_duration_seconds", "route", f'{{upstream="{service}"}}'),
               "{{route}}")),
        panel("Requests per second by view", "reqps",
              (f"sum by (view) (rate(django_http_requests_total_by_view_transport_method_total{web}[5m]))",
               "{{view}}")),
        panel("5xx share by view", "percentunit",
              (ratio(f'django_http_responses_total_by_status_view_method_total{{{own},status=~"5.."}}',
                     f"django_http_responses_total_by_status_view_method_total{{{own}}}", "view"), "{{view}}")),
        panel("Latency p95 / p99 by view", "s",
              *((quantile(q, "django_http_requests_latency_seconds_by_view_method", "view", f"{{{own}}}"),
                 f"{{{{view}}}} p{int(q * 100)}") for q in (0.95, 0.99))),
        panel("Processes up", "short", (f"sum by (role) (up{{{own}}})", "{{role}}")),
        panel("Dependencies reached at the last readiness check (1 yes, 0 no; the lowest process)", "short",
              (f"min by (dependency) (bazaar_dependency_up{{{own}}})", "{{dependency}}")),
        panel("Calls to other services by outcome, retries", "ops",
              (f"sum by (upstream, outcome) (rate(bazaar_upstream_attempts_total{{{own}}}[5m]))",
               "{{upstream}} {{outcome}}"),
              (f"sum by (upstream) (rate(bazaar_upstream_retries_total{{{own}}}[5m]))", "{{upstream}} retries")),
        panel("Breakers of its calls (0 closed, 1 half-open, 2 open)", "short",
              (f"max by (upstream, kind) (bazaar_circuit_breaker_state{{{own}}})", "{{upstream}} {{kind}}")),
        panel("Worker: tasks by name and outcome", "ops",
              (f"sum by (task, outcome) (rate(bazaar_celery_tasks_total{{{own}}}[5m]))", "{{task}} {{outcome}}")),
        panel("Worker: task duration p95", "s",
              (quantile(0.95, "bazaar_celery_task_duration_seconds", "task", f"{{{own}}}"), "{{task}}")),
        panel("Queue depth, outbox backlog and age", "short",
              (f"max by (queue) (bazaar_queue_depth_messages{{{own}}})", "queue {{queue}}"),
              (f"max (bazaar_outbox_unpublished_messages{{{own}}})", "outbox unpublished"),
              (f"max (bazaar_outbox_oldest_unpublished_age_seconds{{{own}}})", "outbox oldest (s)")),
        panel("Messages: publish failures, duplicates skipped, dead letters", "ops",
              (f"sum by (task) (rate(bazaar_outbox_publish_failures_total{{{own}}}[5m]))", "publish failed {{task}}"),
              (f"sum by (task) (rate(bazaar_consumer_duplicates_skipped_total{{{own}}}[5m]))", "duplicate {{task}}"),
              (f"sum by (task) (rate(bazaar_dead_letters_total{{{own}}}[5m]))", "dead letter {{task}}")),
    ]  # fmt: skip


# What only one service measures.
OWN_PANELS: dict[str, list[Panel]] = {
    "orders": [
        panel("Order transitions", "ops",
              ("sum by (from_state, to_state) (rate(bazaar_order_transitions_total[5m]))",
               "{{from_state}} → {{to_state}}")),
        panel("Saga: overdue steps, re-drives, settled, reconciliation repairs", "short",
              ("sum by (step) (bazaar_saga_overdue_steps)", "overdue {{step}}"),
              ("sum by (step) (increase(bazaar_saga_redrives_total[1h]))", "re-driven {{step}}"),
              ("sum by (step, outcome) (increase(bazaar_saga_settled_total[1h]))", "settled {{step}} {{outcome}}"),
              ("sum by (kind) (increase(bazaar_reconciliation_repairs_total[1h]))", "repair {{kind}}")),
    ],
    "catalog": [
        panel("Stock reservations by outcome and reason", "ops",
              ("sum by (outcome, reason) (rate(bazaar_stock_reservations_total[5m]))", "{{outcome}} {{reason}}")),
    ],
    "auth": [
        panel("Sign-in and sign-up refusals at the edge (rate limit)", "reqps",
              ('sum by (rate_class) (rate(bazaar_gateway_rate_limited_total{rate_class="login"}[5m]))',
               "{{rate_class}}")),
    ],
}  # fmt: skip


def service_dashboard(service: str) -> dict[str, Any]:
    return dashboard(f"bazaar-service-{service}", f"Bazaar / Service: {service}",
                     [*service_panels(service), *OWN_PANELS.get(service, [])])  # fmt: skip


def all_dashboards() -> dict[str, dict[str, Any]]:
    """File name → dashboard, for every dashboard the chart ships."""
    return {
        "platform-overview.json": PLATFORM_OVERVIEW,
        "gateway-edge.json": GATEWAY_EDGE,
        "saga-and-queues.json": SAGA_AND_QUEUES,
        **{f"service-{spec.name}.json": service_dashboard(spec.name) for spec in SERVICES},
    }


def render(content: dict[str, Any]) -> str:
    return json.dumps(content, indent=2, ensure_ascii=False) + "\n"


def differences(directory: Path = DIRECTORY) -> list[str]:
    """What in ``directory`` is not what this module makes (missing, changed or extra files)."""
    wanted = all_dashboards()
    problems = [name for name, content in wanted.items()
                if not (directory / name).exists() or (directory / name).read_text() != render(content)]  # fmt: skip
    problems += [f"{path.name} (not made here)" for path in sorted(directory.glob("*.json")) if path.name not in wanted]
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the files differ from what is made here")
    options = parser.parse_args(argv)
    if options.check:
        problems = differences()
        for problem in problems:
            print(f"out of date: {DIRECTORY / problem}; run make dashboards")
        return 1 if problems else 0
    for name, content in all_dashboards().items():
        (DIRECTORY / name).write_text(render(content))
        print(f"wrote {DIRECTORY / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
