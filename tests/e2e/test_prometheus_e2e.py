"""A real Prometheus scrapes the running platform and evaluates the chart's rules.

The server is Debian's ``prometheus`` binary (CI installs it; without it these tests fail, they
do not skip), configured by :mod:`bazaar_devtools.prometheus` as ``make up`` configures it: the
``METRICS_PORT`` of every web and worker process through file-based discovery, with the labels
the chart's PodMonitor gives (``service``, ``role``), and ``charts/bazaar/files/alerts/*.yaml``
loaded. Scrapes and rule evaluations every second, so each step takes seconds.

Figures are read after a scrape that started once the traffic was done (every target's ``up``
sample is newer than that moment), never by polling until a figure appears.
"""

from __future__ import annotations

import json
import signal
import time
import uuid
from pathlib import Path

import pytest
import yaml

from bazaar_devtools import prometheus as prom
from bazaar_devtools.e2e import E2EPlatform, wait_for
from bazaar_devtools.faults import signal_tree

ALERTS_DIR = prom.RULES_DIR
DASHBOARDS_DIR = ALERTS_DIR.parent / "dashboards"


@pytest.fixture(scope="module")
def prometheus(platform: E2EPlatform, tmp_path_factory: pytest.TempPathFactory, prometheus_binary: str):
    server = prom.Prometheus(
        tmp_path_factory.mktemp("prometheus"), scrape_interval="1s", evaluation_interval="1s", tag=platform.platform.tag
    )
    write_targets(server, platform)
    server.start()
    try:
        wait_for(lambda: all_targets_up(server, platform), 20, "prometheus to scrape every process")
        yield server
    finally:
        server.stop()


def scraped_procs(platform: E2EPlatform) -> list:
    return [proc for proc in platform.platform.procs if proc.alive and proc.metrics_port]


def write_targets(server: prom.Prometheus, platform: E2EPlatform) -> None:
    server.write_targets("platform", scraped_procs(platform))


def all_targets_up(server: prom.Prometheus, platform: E2EPlatform) -> bool:
    wanted = {f"127.0.0.1:{proc.metrics_port}" for proc in scraped_procs(platform)}
    healthy = {target["labels"]["instance"] for target in server.active_targets() if target["health"] == "up"}
    return wanted <= healthy


def fresh_scrape(server: prom.Prometheus, timeout: float = 15) -> None:
    """Wait until every live target was scraped by a scrape that started after now."""
    since = time.time()
    wait_for(
        # timestamp() of a plain selector: the samples' own time (of an expression it is now).
        lambda: (oldest := server.value('min(timestamp(up{job="bazaar"}))')) is not None and oldest > since,
        timeout,
        "a scrape of every target after the traffic",
        interval=0.2,
    )


def counter(server: prom.Prometheus, selector: str) -> float:
    """The sum of a counter's series across every process (0 before it first moved)."""
    return server.value(f"sum({selector})") or 0.0


def in_stock_product(platform: E2EPlatform, quantity: int) -> dict:
    response = platform.api("GET", "/api/v1/catalog/products", params={"page_size": 50})
    assert response.status_code == 200, response.text
    return next(product for product in response.json()["results"] if product["available"] >= quantity)


def test_every_process_is_a_target_with_its_service_and_role(platform: E2EPlatform, prometheus):
    targets = {
        target["labels"]["instance"]: (target["labels"]["service"], target["labels"]["role"], target["health"])
        for target in prometheus.active_targets()
    }

    assert targets == {
        f"127.0.0.1:{proc.metrics_port}": (proc.service, proc.kind, "up") for proc in scraped_procs(platform)
    }
    # One web process of each of the five projects and one worker of each of the four services.
    up = {
        (labels["service"], labels["role"]): value for labels, value in prometheus.query("sum by (service, role) (up)")
    }
    assert {key: value >= 1 for key, value in up.items()} == {
        **{(service, "web"): True for service in ("gateway", "auth", "catalog", "orders", "profiles")},
        **{(service, "worker"): True for service in ("auth", "catalog", "orders", "profiles")},
    }


def test_the_chart_rules_are_loaded_and_evaluate_without_error(prometheus):
    declared = {
        rule.get("alert") or rule.get("record")
        for path in prom.rule_files()
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
    }

    loaded = [rule for group in prometheus.rule_groups() for rule in group["rules"]]
    wait_for(lambda: all(r["lastEvaluation"] > "2000" for g in prometheus.rule_groups() for r in g["rules"]), 10,
             "every rule to be evaluated once")  # fmt: skip

    assert {rule["name"] for rule in loaded} == declared
    assert len(declared) >= 17
    broken = {rule["name"]: rule.get("lastError") for g in prometheus.rule_groups() for rule in g["rules"]
              if rule["health"] != "ok"}  # fmt: skip
    assert broken == {}


def test_every_dashboard_query_runs_on_prometheus(prometheus):
    queries = [
        (path.name, panel["title"], target["expr"])
        for path in sorted(DASHBOARDS_DIR.glob("*.json"))
        for panel in json.loads(path.read_text())["panels"]
        for target in panel.get("targets", [])
    ]
    assert len(queries) >= 20

    failures = []
    for dashboard, title, expr in queries:
        try:
            prometheus.query(expr)
        except prom.PrometheusError as error:
            failures.append(f"{dashboard} / {title}: {error}")
    assert failures == []


def test_gateway_requests_by_route_match_the_traffic_sent(platform: E2EPlatform, prometheus):
    browse = 'bazaar_gateway_requests_total{route="/api/v1/catalog",upstream="catalog",method="GET",status_class="2xx"}'
    missing = (
        'bazaar_gateway_requests_total{route="/api/v1/catalog",upstream="catalog",method="GET",status_class="4xx"}'
    )
    fresh_scrape(prometheus)
    before = {selector: counter(prometheus, selector) for selector in (browse, missing)}
    before_latency = counter(prometheus, 'bazaar_gateway_request_duration_seconds_count{route="/api/v1/catalog"}')

    for page in range(1, 8):
        assert platform.api("GET", "/api/v1/catalog/products", params={"page": 1, "page_size": page}).status_code == 200
    for _ in range(3):
        assert platform.api("GET", "/api/v1/catalog/products/999999999").status_code == 404
    fresh_scrape(prometheus)

    assert counter(prometheus, browse) - before[browse] == 7
    assert counter(prometheus, missing) - before[missing] == 3
    latency = counter(prometheus, 'bazaar_gateway_request_duration_seconds_count{route="/api/v1/catalog"}')
    assert latency - before_latency == 10
    # By route, as the gateway-edge dashboard groups them: the catalog route is one series per class.
    by_route = prometheus.query('sum by (route, status_class) (bazaar_gateway_requests_total{route="/api/v1/catalog"})')
    assert {labels["status_class"] for labels, _ in by_route} >= {"2xx", "4xx"}


def test_task_and_saga_counts_match_two_checkouts(platform: E2EPlatform, prometheus, customer):
    _, token = customer
    product = in_stock_product(platform, 2)
    reserve = 'bazaar_celery_tasks_total{service="catalog",task="catalog.reserve_stock",outcome="success"}'
    redelivered = 'bazaar_consumer_duplicates_skipped_total{service="catalog",task="catalog.reserve_stock"}'
    reply = 'bazaar_celery_tasks_total{service="orders",task="orders.stock_reserved",outcome="success"}'
    replies_redelivered = 'bazaar_consumer_duplicates_skipped_total{service="orders",task="orders.stock_reserved"}'
    reserved = 'bazaar_order_transitions_total{service="orders",from_state="pending",to_state="reserved"}'
    stock = 'bazaar_stock_reservations_total{service="catalog",outcome="reserved"}'
    checkouts = 'bazaar_gateway_requests_total{route="/api/v1/orders",method="POST",status_class="2xx"}'
    selectors = (reserve, redelivered, reply, replies_redelivered, reserved, stock, checkouts)
    fresh_scrape(prometheus)
    before = {selector: counter(prometheus, selector) for selector in selectors}

    order_ids = []
    for _ in range(2):
        created = platform.api(
            "POST", "/api/v1/orders", token, json={"items": [{"product_id": product["id"], "quantity": 1}]}
        )
        assert created.status_code == 202, created.text
        order_ids.append(created.json()["id"])
    for order_id in order_ids:
        wait_for(
            lambda oid=order_id: platform.api("GET", f"/api/v1/orders/{oid}", token).json()["status"] == "reserved",
            30, "the order to be reserved",
        )  # fmt: skip
    fresh_scrape(prometheus)
    moved = {selector: counter(prometheus, selector) - before[selector] for selector in selectors}

    assert moved[checkouts] == 2
    assert moved[reserved] == 2
    assert moved[stock] == 2
    # Each checkout's reservation task ran once, plus once per redelivery its consumer skipped.
    assert moved[reserve] == 2 + moved[redelivered]
    assert moved[reply] == 2 + moved[replies_redelivered]
    assert moved[redelivered] <= 2  # a redelivery needs a lost or late acknowledgement
    # The outbox published what it held: nothing is left waiting.
    assert prometheus.value("sum(bazaar_outbox_unpublished_messages)") == 0


def test_outbox_backlog_shows_a_checkout_held_while_the_broker_is_down(platform: E2EPlatform, prometheus, customer):
    _, token = customer
    product = in_stock_product(platform, 1)
    backlog = 'bazaar_outbox_unpublished_messages{service="orders"}'
    fresh_scrape(prometheus)
    assert prometheus.value(f"sum({backlog})") == 0

    platform.broker.stop()
    try:
        created = platform.api(
            "POST", "/api/v1/orders", token, json={"items": [{"product_id": product["id"], "quantity": 1}]}
        )
        assert created.status_code == 202, created.text
        time.sleep(1.5)  # the message has now waited at least that long
        fresh_scrape(prometheus)

        # The worker's scrape still answers with the broker away (its queue depth is left out)...
        assert prometheus.value('min(up{service="orders",role="worker"})') == 1
        # ...and reports its service's backlog: the one message.
        assert prometheus.value(f"sum({backlog})") == 1
        age = prometheus.value('max(bazaar_outbox_oldest_unpublished_age_seconds{service="orders"})')
        assert age is not None
        assert age >= 1.5
    finally:
        platform.broker.start()

    order_id = created.json()["id"]
    wait_for(lambda: platform.api("GET", f"/api/v1/orders/{order_id}", token).json()["status"] == "reserved",
             60, "the held order to be reserved once the broker is back")  # fmt: skip
    fresh_scrape(prometheus)
    assert prometheus.value(f"sum({backlog})") == 0
    assert prometheus.value('max(bazaar_outbox_oldest_unpublished_age_seconds{service="orders"})') == 0


def _active(prometheus: prom.Prometheus, alertname: str, **labels: str) -> str | None:
    """The state (pending, firing) of the alert with these labels, or None."""
    for alert in prometheus.alerts():
        if alert["labels"].get("alertname") == alertname and all(
            alert["labels"].get(k) == v for k, v in labels.items()
        ):
            return alert["state"]
    return None


def test_stopping_a_service_raises_its_alerts_and_they_clear_when_it_resumes(platform: E2EPlatform, prometheus):
    # Invariant: with every profiles process stopped (SIGSTOP: alive but answering nothing, as a
    # hung pod), its web-down, worker-down and empty-rotation alerts are pending (they fire after
    # their `for:` of a minute) and no other service alerts; once it resumes, all three clear.
    expected = [("BazaarWebDown", {"service": "profiles"}), ("BazaarWorkerDown", {"service": "profiles"}),
                ("BazaarInstancesBelowMinimum", {"upstream": "profiles"})]  # fmt: skip
    assert [_active(prometheus, name, **labels) for name, labels in expected] == [None, None, None]
    # Alerts already active (the session platform is shared: an earlier fault test may have left a
    # breaker open) are not this test's; only new ones about another service are.
    before = {(a["labels"]["alertname"], tuple(sorted(a["labels"].items()))) for a in prometheus.alerts()}

    stopped = [proc.pid for proc in (*platform.instances("profiles"), *platform.workers("profiles"))]
    assert len(stopped) == 2
    try:
        for pid in stopped:
            signal_tree(pid, signal.SIGSTOP)
        states = wait_for(
            lambda: (found := [_active(prometheus, n, **labels) for n, labels in expected]) and all(found) and found,
            30, "the profiles alerts to go pending",
        )  # fmt: skip
        assert set(states) <= {"pending", "firing"}
        others = {alert["labels"]["alertname"] for alert in prometheus.alerts()
                  if (alert["labels"]["alertname"], tuple(sorted(alert["labels"].items()))) not in before
                  and (alert["labels"].get("service", "profiles") != "profiles"
                       or alert["labels"].get("upstream", "profiles") != "profiles")}  # fmt: skip
        assert others == set()
    finally:
        for pid in stopped:
            signal_tree(pid, signal.SIGCONT)

    wait_for(lambda: not any(_active(prometheus, name, **labels) for name, labels in expected), 60,
             "the profiles alerts to clear once it resumes")  # fmt: skip
    platform.wait_registered("profiles", 1, timeout=30)


def test_prometheus_logs_no_error(prometheus):
    log = Path(prometheus.directory / "prometheus.log").read_text(errors="replace")
    errors = [line for line in log.splitlines() if "level=error" in line]
    assert errors == []


def test_targets_file_is_what_prometheus_reads(prometheus, platform):
    # A target added under a new file name is scraped too (one file per `make instance`).
    extra = scraped_procs(platform)[0]
    name = f"extra-{uuid.uuid4().hex[:6]}"
    path = prometheus.targets_dir / f"{name}.json"
    prom.write_json_atomically(
        path, [{"targets": [f"127.0.0.1:{extra.metrics_port}"], "labels": {"service": "extra", "role": "web"}}]
    )
    try:
        wait_for(lambda: any(t["labels"].get("service") == "extra" for t in prometheus.active_targets()), 15,
                 "the extra targets file to be read")  # fmt: skip
    finally:
        path.unlink()
    wait_for(lambda: not any(t["labels"].get("service") == "extra" for t in prometheus.active_targets()), 15,
             "the removed targets file to be forgotten")  # fmt: skip
