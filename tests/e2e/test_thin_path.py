"""Issue 2's thin path, end to end through the gateway, against the real platform's processes."""

from __future__ import annotations

import time

from bazaar_devtools.e2e import E2EPlatform, wait_for

TERMINAL_SAGA_STATES = {"reserved", "rejected"}


def _in_stock_product(platform: E2EPlatform, at_least: int) -> dict:
    response = platform.api("GET", "/api/v1/catalog/products", params={"page_size": 50})
    assert response.status_code == 200, response.text
    for product in response.json()["results"]:
        if product["available"] >= at_least:
            return product
    raise AssertionError(f"no seeded product with {at_least} units available")


def _product(platform: E2EPlatform, product_id: int) -> dict:
    response = platform.api("GET", f"/api/v1/catalog/products/{product_id}")
    assert response.status_code == 200, response.text
    return response.json()


def _wait_for_saga(platform: E2EPlatform, token: str, order_id: str) -> dict:
    def settled():
        order = platform.api("GET", f"/api/v1/orders/{order_id}", token).json()
        return order if order["status"] in TERMINAL_SAGA_STATES else None

    return wait_for(settled, 30, f"order {order_id} to be reserved or rejected")


def test_customer_registers_browses_and_orders_and_stock_is_held(platform: E2EPlatform, customer):
    _, token = customer
    product = _in_stock_product(platform, at_least=3)
    assert {"id", "name", "price", "available"} <= product.keys()

    created = platform.api(
        "POST", "/api/v1/orders", token, json={"items": [{"product_id": product["id"], "quantity": 2}]}
    )

    assert created.status_code == 202, created.text
    assert created.json()["status"] == "pending"
    order = _wait_for_saga(platform, token, created.json()["id"])
    assert order["status"] == "reserved"
    held = wait_for(
        lambda: (p := _product(platform, product["id"]))["available"] == product["available"] - 2 and p,
        10,
        "the catalog to show the held stock",
    )
    assert held["available"] == product["available"] - 2


def test_order_for_more_than_the_stock_is_rejected_with_a_reason(platform: E2EPlatform, customer):
    _, token = customer
    product = _in_stock_product(platform, at_least=1)

    created = platform.api(
        "POST",
        "/api/v1/orders",
        token,
        json={"items": [{"product_id": product["id"], "quantity": product["available"] + 1}]},
    )

    assert created.status_code == 202, created.text
    order = _wait_for_saga(platform, token, created.json()["id"])
    assert order["status"] == "rejected"
    assert "stock" in str(order).lower()
    assert _product(platform, product["id"])["available"] == product["available"]


def test_order_endpoints_without_a_valid_token_are_401(platform: E2EPlatform):
    missing = platform.api("POST", "/api/v1/orders", json={"items": [{"product_id": 1, "quantity": 1}]})
    forged = platform.api("GET", "/api/v1/orders", token="not.a.token")

    assert missing.status_code == 401
    assert forged.status_code == 401
    assert missing.headers["Content-Type"].startswith("application/problem+json")


def test_a_service_with_no_instance_is_a_503_problem_not_an_error_page(platform: E2EPlatform, customer):
    _, token = customer
    for proc in platform.instances("profiles"):
        platform.stop_instance(proc)
    try:
        wait_for(lambda: not platform.registry.lookup("profiles"), 10, "profiles to leave the registry")
        time.sleep(1)  # the gateway's discovery cache

        response = platform.api("GET", "/api/v1/profiles/me", token)

        assert response.status_code == 503
        assert response.headers["Content-Type"].startswith("application/problem+json")
        assert int(response.headers["Retry-After"]) >= 1
        body = response.json()
        assert body["status"] == 503
        assert body["title"]
    finally:
        platform.ensure_one_instance_each()

    # Back without a gateway restart, once its breaker lets a probe through (a few seconds).
    wait_for(
        lambda: platform.api("GET", "/api/v1/profiles/me", token).status_code == 200,
        20,
        "the gateway to route to the restarted profiles service",
    )


def test_a_killed_instance_leaves_the_registry_within_its_ttl(platform: E2EPlatform):
    extra = platform.start_instance("catalog")
    platform.wait_registered("catalog", 2)

    platform.kill_instance(extra)
    killed_at = time.monotonic()
    wait_for(
        lambda: extra.instance_id not in {i.instance_id for i in platform.registry.lookup("catalog")},
        10,
        "the killed instance to expire",
    )

    ttl = float(platform.platform.config.extra_env["DISCOVERY_TTL_SECONDS"])
    assert time.monotonic() - killed_at <= ttl + 1.5
    assert [i.instance_id for i in platform.registry.lookup("catalog")] == [
        platform.instances("catalog")[0].instance_id
    ]


def test_request_id_goes_through_and_is_logged_by_the_service(platform: E2EPlatform):
    response = platform.api("GET", "/api/v1/catalog/products", headers={"X-Request-ID": "e2e-trace-0001"})

    assert response.status_code == 200
    assert response.headers["X-Request-ID"] == "e2e-trace-0001"
    log = platform.instances("catalog")[0].log_path
    wait_for(lambda: "e2e-trace-0001" in log.read_text(), 5, "the catalog to log the request id")
