"""Broker benchmark: the same platform on Redis and on RabbitMQ, measured the same way.

    make bench-broker                 # both brokers (RabbitMQ must answer rabbitmqctl)
    python -m bazaar_devtools.bench_broker --brokers rabbitmq --checkouts 300

Per broker it starts the whole platform (PostgreSQL from ``DATABASE_URL``, else SQLite) through the
e2e harness and measures, through the real gateway:

1. **checkout throughput** — ``--checkouts`` checkouts from ``--clients`` concurrent clients
   (accepted per second), and **created → reserved latency** of those orders, read from the orders
   database (``reserved_at - created_at``: outbox publish, catalog worker, reply, orders worker);
2. **redelivery after a worker is killed** — a catalog worker takes a reservation and is
   SIGKILLed before finishing it: seconds from the kill until a new worker has reserved the order
   (Redis: visibility timeout + restore sweep, here the production defaults 60 s / 5 s);
3. **broker outage** — the broker is taken away for 15 s (Redis: the process stops and starts on
   the same port, without its data; RabbitMQ: every connection reset and refused at a proxy):
   whether every worker is still the same process, and seconds from the broker's return until an
   order placed during the outage is reserved.

Prints one table; the figures in ``docs/broker.md`` come from it. Not part of ``make test``.
"""

from __future__ import annotations

import argparse
import signal
import statistics
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psutil
import requests

from bazaar_common.demo import DEMO_MERCHANT
from bazaar_devtools.e2e import E2EPlatform, e2e_config, wait_for
from bazaar_devtools.platform import ORDERS, Platform, drop_postgres_database

# Production's Redis settings, not the e2e suite's shortened ones.
PRODUCTION_REDELIVERY = {"CELERY_VISIBILITY_TIMEOUT_SECONDS": "60", "CELERY_UNACKED_RESTORE_SECONDS": "5"}


def _product(platform: E2EPlatform, stock: int) -> int:
    token = platform.token(DEMO_MERCHANT.email)
    response = platform.api(
        "POST",
        "/api/v1/catalog/merchant/products",
        token,
        json={"name": "Bench", "sku": f"B-{uuid.uuid4().hex[:10]}", "price": "1.00", "initial_stock": stock},
    )
    response.raise_for_status()
    return response.json()["id"]


def _checkout(platform: E2EPlatform, session: requests.Session, token: str, product_id: int) -> requests.Response:
    return session.post(
        f"{platform.gateway_url}/api/v1/orders",
        json={"items": [{"product_id": product_id, "quantity": 1}]},
        headers={"Authorization": f"Bearer {token}", "Idempotency-Key": uuid.uuid4().hex},
        timeout=30,
    )


def _status(platform: E2EPlatform, token: str, order_id: str) -> str:
    return platform.api("GET", f"/api/v1/orders/{order_id}", token).json().get("status", "?")


def _latencies_ms(platform: E2EPlatform, order_ids: list[str]) -> list[float]:
    import psycopg2

    url = platform.platform.database_url(ORDERS)
    if not url.startswith("postgres"):
        return []
    with psycopg2.connect(url) as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT EXTRACT(EPOCH FROM (reserved_at - created_at)) * 1000 FROM orders_order"
            " WHERE id::text = ANY(%s) AND reserved_at IS NOT NULL",
            [order_ids],
        )
        return [float(row[0]) for row in cursor.fetchall()]


def throughput(platform: E2EPlatform, checkouts: int, clients: int) -> dict[str, Any]:
    product_id = _product(platform, checkouts + 10)
    tokens = [platform.register_customer()[1] for _ in range(clients)]

    def shop(index: int) -> list[str]:
        session = requests.Session()
        ids = []
        for _ in range(checkouts // clients):
            response = _checkout(platform, session, tokens[index], product_id)
            if response.status_code == 202:
                ids.append(response.json()["id"])
        return ids

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        order_ids = [order_id for ids in pool.map(shop, range(clients)) for order_id in ids]
    elapsed = time.monotonic() - started
    wait_for(lambda: len(_latencies_ms(platform, order_ids)) == len(order_ids), 300, "every order reserved", interval=1)
    latencies = sorted(_latencies_ms(platform, order_ids))
    result: dict[str, Any] = {"accepted": len(order_ids), "checkouts_per_s": len(order_ids) / elapsed}
    if latencies:
        result |= {
            "reserved": len(latencies),
            "p50_ms": statistics.median(latencies),
            "p95_ms": latencies[int(len(latencies) * 0.95) - 1],
            "max_ms": latencies[-1],
        }
    return result


def redelivery(platform: E2EPlatform) -> float:
    product_id = _product(platform, 10)
    _, token = platform.register_customer()
    for worker in platform.workers("catalog"):
        platform.stop_instance(worker, signal.SIGTERM)
    doomed = platform.platform.start_worker("catalog", beat=True, pool="prefork")  # children to freeze
    log = doomed.log_path
    assert log is not None, "the worker was started with a log file"
    assert doomed.popen is not None, "the worker is running"
    since = log.stat().st_size  # the log file is shared with the workers before it

    def logged(text: str) -> bool:
        with log.open("rb") as handle:
            handle.seek(since)
            return text.encode() in handle.read()

    wait_for(lambda: logged("Connected to"), 30, "the worker to connect")
    for child in psutil.Process(doomed.popen.pid).children():
        child.send_signal(signal.SIGSTOP)
    response = _checkout(platform, requests.Session(), token, product_id)
    order_id = response.json()["id"]
    wait_for(lambda: logged("catalog.reserve_stock["), 30, "the worker to take it")
    platform.kill_instance(doomed)
    killed = time.monotonic()
    platform.platform.start_worker("catalog", beat=True)
    wait_for(lambda: _status(platform, token, order_id) == "reserved", 180, "the redelivery", interval=0.25)
    return time.monotonic() - killed


def outage(platform: E2EPlatform, seconds: float = 15) -> dict[str, Any]:
    product_id = _product(platform, 10)
    _, token = platform.register_customer()
    workers = platform.workers("catalog") + platform.workers("orders")
    platform.broker.stop()
    response = _checkout(platform, requests.Session(), token, product_id)
    order_id = response.json()["id"]
    time.sleep(seconds)
    platform.broker.start()
    back = time.monotonic()
    wait_for(lambda: _status(platform, token, order_id) == "reserved", 120, "the order to be reserved", interval=0.25)
    return {
        "workers_survived": all(worker.alive for worker in workers),
        "reserved_after_return_s": time.monotonic() - back,
        "checkout_status_during_outage": response.status_code,
    }


def run(broker: str, checkouts: int, clients: int) -> dict[str, Any]:
    import os

    os.environ["E2E_BROKER"] = broker
    from bazaar_devtools.e2e import e2e_broker

    var_dir = Path(tempfile.mkdtemp(prefix=f"bench-broker-{broker}-"))
    config, databases = e2e_config(var_dir)
    config.extra_env |= PRODUCTION_REDELIVERY
    config.replicas = {"orders": 2}
    broker_handle = e2e_broker(var_dir / "broker")
    config.broker_url = broker_handle.url
    running = Platform(config)
    try:
        running.start_redis_if_needed()
        running.prepare_databases()
        running.seed_demo_data()
        running.start_all()
        platform = E2EPlatform(running, broker_handle)
        results = {"broker": broker, **throughput(platform, checkouts, clients)}
        results["redelivery_s"] = redelivery(platform)
        results |= outage(platform)
        return results
    finally:
        running.shutdown()
        broker_handle.close()
        for url in databases:
            drop_postgres_database(url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--brokers", default="redis,rabbitmq")
    parser.add_argument("--checkouts", type=int, default=200)
    parser.add_argument("--clients", type=int, default=8)
    options = parser.parse_args()
    rows = [run(broker.strip(), options.checkouts, options.clients) for broker in options.brokers.split(",")]
    for row in rows:
        cells = [f"{key}={value:.1f}" if isinstance(value, float) else f"{key}={value}" for key, value in row.items()]
        print(" | ".join(cells))


if __name__ == "__main__":
    main()
