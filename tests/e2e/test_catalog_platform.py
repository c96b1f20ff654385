"""The catalog end to end: browsing through the gateway, merchants at work, the saga's worker.

Runs the real platform (gateway, services, workers) as processes; see ``conftest.py``.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from typing import Any

import requests
from celery import Celery

from bazaar_common.demo import DEMO_CUSTOMER, DEMO_MERCHANT, DEMO_PASSWORD

PRODUCTS = "/api/v1/catalog/products"
MERCHANT = "/api/v1/catalog/merchant"


def _wait(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def _available(platform, product_id: int) -> int:
    response = platform.api("GET", f"{PRODUCTS}/{product_id}")
    assert response.status_code == 200, response.text
    return response.json()["available"]


def test_browsing_the_seeded_catalog_with_etags(platform):
    listed = platform.api("GET", PRODUCTS, params={"page_size": 100, "ordering": "name"})

    assert listed.status_code == 200
    body = listed.json()
    assert body["count"] >= 20
    acme = [item for item in body["results"] if item["merchant"]["slug"] == "acme-goods"]
    assert len(acme) == 20
    assert all(item["available"] > 0 and item["currency"] == "EUR" for item in acme)
    conditional = {"If-None-Match": listed.headers["ETag"]}
    again = platform.api("GET", PRODUCTS, params={"page_size": 100, "ordering": "name"}, headers=conditional)
    assert again.status_code == 304
    bad = platform.api("GET", PRODUCTS, params={"ordering": "colour"})
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["field"] == "ordering"


def test_merchant_creates_restocks_and_customers_see_it_at_once(platform):
    token = platform.token(DEMO_MERCHANT.email, DEMO_PASSWORD)
    sku = f"E2E-{uuid.uuid4().hex[:8]}"

    body = {"sku": sku, "name": f"Lantern {sku}", "price": "15.00", "initial_stock": 3}
    created = platform.api("POST", f"{MERCHANT}/products", token, json=body)
    assert created.status_code == 201, created.text
    product_id = created.json()["id"]
    assert _available(platform, product_id) == 3

    adjustment = {"delta": 4, "reason": "delivery"}
    adjusted = platform.api("POST", f"{MERCHANT}/products/{product_id}/stock-adjustments", token, json=adjustment)
    assert adjusted.status_code == 200
    assert _available(platform, product_id) == 7
    customer = platform.token(DEMO_CUSTOMER.email, DEMO_PASSWORD)
    refused = platform.api("POST", f"{MERCHANT}/products/{product_id}/deactivate", customer)
    assert refused.status_code == 403


def test_the_catalog_worker_reserves_and_replies(platform):
    # given: a product with 2 units, and two orders of 2 units each sent by task name
    token = platform.token(DEMO_MERCHANT.email, DEMO_PASSWORD)
    sku = f"E2E-{uuid.uuid4().hex[:8]}"
    body = {"sku": sku, "name": f"Kite {sku}", "price": "5.00", "initial_stock": 2}
    created = platform.api("POST", f"{MERCHANT}/products", token, json=body)
    product_id = created.json()["id"]
    sender = Celery(broker=platform.broker.url)
    for quantity in (2, 2):
        lines = [{"product_id": product_id, "quantity": quantity}]
        payload = {"order_id": f"e2e-{uuid.uuid4()}", "lines": lines}
        sender.send_task(
            "catalog.reserve_stock",
            kwargs={"message_id": str(uuid.uuid4()), "payload": payload},
            queue="catalog",
        )

    # then: whichever the worker handles first is held, the other is rejected; stock never < 0
    _wait(lambda: _available(platform, product_id) == 0, 30, "the reservation to show")
    time.sleep(1.5)
    assert _available(platform, product_id) == 0
    ledger = platform.api("GET", f"{MERCHANT}/products/{product_id}/stock-movements", token)
    rows = sorted((row["reason"], row["delta_reserved"]) for row in ledger.json()["results"])
    assert rows == [("initial", 0), ("reserve", 2)]


def test_merchant_signs_in_to_the_catalog_admin_and_sees_own_products(platform):
    admin = platform.url("catalog") + "/admin/"
    session = requests.Session()
    login_page = session.get(admin + "login/", timeout=10)
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login_page.text).group(1)

    signed_in = session.post(
        admin + "login/?next=/admin/products/product/",
        data={"username": DEMO_MERCHANT.email, "password": DEMO_PASSWORD, "csrfmiddlewaretoken": csrf},
        headers={"Referer": admin + "login/"},
        timeout=20,
    )

    assert signed_in.status_code == 200
    assert signed_in.url.endswith("/admin/products/product/")
    assert "Cast Iron Skillet" in signed_in.text
    assert "Import CSV" in signed_in.text
