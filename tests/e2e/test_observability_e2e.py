"""Observability of the running platform: metrics on their own listeners, request ids in task logs.

Each process serves Prometheus metrics on its ``METRICS_PORT`` (the main process adds up its
workers' samples); the gateway's public port serves none.
"""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

from bazaar_devtools.e2e import E2EPlatform, wait_for
from bazaar_devtools.platform import Proc


def _samples(proc: Proc) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = requests.get(f"http://127.0.0.1:{proc.metrics_port}/metrics", timeout=5)
    assert response.status_code == 200, response.text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def _value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def _in_stock_product(platform: E2EPlatform) -> dict:
    response = platform.api("GET", "/api/v1/catalog/products", params={"page_size": 50})
    assert response.status_code == 200, response.text
    return next(product for product in response.json()["results"] if product["available"] >= 2)


def test_the_public_gateway_port_does_not_serve_metrics(platform: E2EPlatform):
    response = platform.api("GET", "/metrics")

    assert response.status_code == 404
    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert "django_http_requests" not in response.text


def test_a_checkout_is_counted_at_the_edge_and_in_the_workers_and_its_tasks_log_its_request_id(
    platform: E2EPlatform, customer
):
    _, token = customer
    product = _in_stock_product(platform)
    gateway = platform.instances("gateway")[0]
    orders_worker = platform.workers("orders")[0]
    catalog_worker = platform.workers("catalog")[0]
    route = {"route": "/api/v1/orders", "upstream": "orders", "method": "POST", "status_class": "2xx"}
    before_edge = _value(_samples(gateway), "bazaar_gateway_requests_total", **route)
    before_reserved = _value(_samples(catalog_worker), "bazaar_stock_reservations_total", outcome="reserved", reason="")
    request_id = f"e2e-obs-{uuid.uuid4().hex[:12]}"

    created = platform.api(
        "POST",
        "/api/v1/orders",
        token,
        json={"items": [{"product_id": product["id"], "quantity": 1}]},
        headers={"X-Request-ID": request_id},
    )
    assert created.status_code == 202, created.text
    order_id = created.json()["id"]
    wait_for(
        lambda: platform.api("GET", f"/api/v1/orders/{order_id}", token).json()["status"] == "reserved",
        30,
        "the order to be reserved",
    )

    assert _value(_samples(gateway), "bazaar_gateway_requests_total", **route) == before_edge + 1
    edge = _samples(gateway)
    assert _value(edge, "bazaar_gateway_request_duration_seconds_count", route="/api/v1/orders", upstream="orders") >= 1
    reserved = wait_for(
        lambda: (value := _value(
            _samples(catalog_worker), "bazaar_stock_reservations_total", outcome="reserved", reason=""
        )) > before_reserved and value,
        10, "the catalog worker to count the reservation",
    )  # fmt: skip
    assert reserved == before_reserved + 1
    catalog = _samples(catalog_worker)
    assert _value(catalog, "bazaar_celery_tasks_total", task="catalog.reserve_stock", outcome="success") >= 1
    assert ("bazaar_queue_depth_messages", (("queue", "catalog"),)) in catalog
    assert ("bazaar_outbox_unpublished_messages", ()) in catalog
    orders = wait_for(
        lambda: (
            (found := _samples(orders_worker))
            and _value(found, "bazaar_order_transitions_total", from_state="pending", to_state="reserved") >= 1
            and found
        ),
        10,
        "the orders worker to count the transition",
    )
    assert _value(orders, "bazaar_celery_tasks_total", task="orders.stock_reserved", outcome="success") >= 1

    # The reservation task in the catalog worker logged with the checkout's request id.
    def task_lines() -> list[dict]:
        lines = []
        for raw in catalog_worker.log_path.read_text(errors="replace").splitlines():
            if request_id in raw and raw.startswith("{"):
                lines.append(json.loads(raw))
        return lines

    lines = wait_for(task_lines, 10, "catalog worker log lines with the request id")
    assert {line["request_id"] for line in lines} == {request_id}


DASHBOARDS = Path(__file__).resolve().parents[2] / "charts" / "bazaar" / "files" / "dashboards"
ALERTS = DASHBOARDS.parent / "alerts"
_NAME = re.compile(r"(?<![\w:])([a-z_:][a-z0-9_:]*)\s*(?=\{|\[|\)|$|\s*(?:>|<|==|/|\*|-|\+|or\b|and\b))")
PROMQL_WORDS = {"sum", "by", "rate", "max", "min", "le", "clamp_min", "histogram_quantile", "increase", "or", "and",
                "without", "count", "avg", "on", "ignoring", "absent"}  # fmt: skip


def _queried_names(expr: str) -> set[str]:
    expr = re.sub(r'"[^"]*"', '""', expr)  # label values are not metric names
    expr = re.sub(r"\{[^}]*\}", "{}", expr)
    # Label lists of aggregations and vector matching are not metric names either.
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    return {name for name in _NAME.findall(expr) if name not in PROMQL_WORDS and not name.startswith("bazaar:")}


def _declared_names() -> set[str]:
    """Families the platform's code declares (a labelled counter never incremented has no sample
    in a multiprocess scrape, yet is exported as soon as it moves)."""
    from prometheus_client import REGISTRY

    import bazaar_common.health  # noqa: F401
    import bazaar_common.http  # noqa: F401
    import bazaar_common.outbox.metrics  # noqa: F401
    import bazaar_common.outbox.services  # noqa: F401
    import bazaar_common.task_observability  # noqa: F401
    import catalog_service.inventory.metrics  # noqa: F401
    import gateway.routing.metrics  # noqa: F401
    import order_service.orders.metrics  # noqa: F401

    names = set()
    for family in REGISTRY.collect():
        names |= {family.name, *(f"{family.name}{suffix}" for suffix in ("_total", "_bucket", "_count", "_sum"))}
    return names


def test_every_dashboard_and_alert_query_names_a_metric_the_platform_exports(platform: E2EPlatform):
    scraped: set[str] = {"up"}
    for proc in platform.platform.procs:
        if proc.alive and proc.metrics_port:
            scraped |= {name for name, _labels in _samples(proc)}
    # The edge and worker metrics every dashboard leans on are really in the scrape.
    assert {"bazaar_gateway_requests_total", "bazaar_queue_depth_messages", "bazaar_outbox_unpublished_messages",
            "django_http_requests_total_by_view_transport_method_total"} <= scraped  # fmt: skip
    known = scraped | _declared_names()
    queried: dict[str, set[str]] = {}
    for path in DASHBOARDS.glob("*.json"):
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel["targets"]:
                queried.setdefault(path.name, set()).update(_queried_names(target["expr"]))
    for path in ALERTS.glob("*.yaml"):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                queried.setdefault(path.name, set()).update(_queried_names(rule["expr"]))

    # Every dashboard the chart ships (overview, edge, saga, one per service) and every rule file.
    assert set(queried) == {path.name for path in (*DASHBOARDS.glob("*.json"), *ALERTS.glob("*.yaml"))}
    assert len(queried) == 8
    unknown = {name: sorted(names - known) for name, names in queried.items() if names - known}
    assert unknown == {}
