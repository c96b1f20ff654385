"""The gateway's own pages: services JSON (admins), the admin status page, one OpenAPI document."""

from __future__ import annotations

import pytest

from gateway.routing import selectors

ADMIN = "00000000-0000-4000-8000-0000000000ad"


@pytest.fixture(autouse=True)
def _fresh_schema_cache(monkeypatch):
    monkeypatch.setattr(selectors, "_schema_cache", None)


def test_services_json_needs_an_admin(api_client, client_as, fresh_upstream_client):
    anonymous = api_client.get("/api/v1/gateway/services")
    customer = client_as(roles=("customer",)).get("/api/v1/gateway/services")

    assert anonymous.status_code == 401
    assert customer.status_code == 403
    assert customer.json()["status"] == 403


def test_services_json_lists_instances_health_heartbeat_in_flight_and_circuits(
    client_as, backend, fresh_upstream_client
):
    first = backend("catalog", "catalog-1")
    backend("orders", "orders-1")

    response = client_as(ADMIN, roles=("admin",)).get("/api/v1/gateway/services")

    assert response.status_code == 200
    body = response.json()
    assert body["registry"] == {"backend": "redis", "error": None}
    assert body["balancer"] == "least_outstanding"
    assert [service["name"] for service in body["services"]] == ["catalog", "orders"]
    catalog = body["services"][0]
    assert catalog["circuit"] == {"state": "closed", "failures": 0}
    (instance,) = catalog["instances"]
    assert instance["instance_id"] == "catalog-1"
    assert instance["base_url"] == first.url
    assert instance["version"] == "test"
    assert instance["metadata"] == {"test": True}
    assert instance["last_heartbeat"] > 0
    assert instance["in_flight"] == 0
    assert instance["circuit"] == {"state": "closed", "failures": 0}
    assert instance["requests"] == 0
    assert instance["latency_ms"] == 0.0
    assert instance["healthy"] is None  # no health monitor runs in this test process
    assert instance["health_status"] == "unchecked"
    assert any(route["prefix"] == "/api/v1/orders" for route in body["routes"])


def test_admin_status_page_shows_routes_services_and_breakers(admin_client, backend, fresh_upstream_client):
    backend("catalog", "catalog-7")

    response = admin_client.get("/admin/gateway/status/")

    assert response.status_code == 200
    page = response.content.decode()
    assert "Gateway status" in page
    assert "catalog-7" in page
    assert "/api/v1/catalog/…" in page
    assert "checkout" in page


def test_admin_status_page_needs_staff(client):
    response = client.get("/admin/gateway/status/")

    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def _schema(title, paths, schemas, security_schemes=None):
    return {"openapi": "3.0.3", "info": {"title": title, "version": "1"}, "paths": paths,
            "components": {"schemas": schemas, "securitySchemes": security_schemes or {}}}  # fmt: skip


def test_one_openapi_document_assembled_from_the_services(api_client, backend, fresh_upstream_client):
    catalog = backend("catalog")
    catalog.schema = _schema(
        "catalog",
        {
            "/api/v1/catalog/products": {"get": {"responses": {"200": {"content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/Product"}}}}}}},
            "/internal/v1/catalog/products": {"get": {"responses": {"200": {"content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/InternalProducts"}}}}}}},
        },
        {"Product": {"type": "object", "properties": {"sku": {"type": "string"}}},
         "InternalProducts": {"type": "object", "properties": {"lines": {"type": "array", "items": {
             "$ref": "#/components/schemas/InternalLine"}}}},
         "InternalLine": {"type": "object"}},
        {"bearerAuth": {"type": "http", "scheme": "bearer"}, "cookieAuth": {"type": "apiKey", "in": "cookie",
                                                                             "name": "sessionid"}},
    )  # fmt: skip
    orders = backend("orders")
    orders.schema = _schema(
        "orders",
        {"/api/v1/orders": {"post": {"requestBody": {"content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/Product"}}}}}}},
        {"Product": {"type": "object", "properties": {"product_id": {"type": "integer"}}}},
    )  # fmt: skip

    response = api_client.get("/api/schema/openapi.json")

    assert response.status_code == 200
    document = response.json()
    assert document["info"]["title"] == "Bazaar API"
    assert "/api/v1/catalog/products" in document["paths"]
    assert "/api/v1/orders" in document["paths"]
    assert "/api/v1/gateway/services" in document["paths"]
    assert not any(path.startswith("/internal") for path in document["paths"])
    # Same component name, different shapes: the second one is renamed and its refs follow.
    assert document["components"]["schemas"]["Product"]["properties"] == {"sku": {"type": "string"}}
    assert document["components"]["schemas"]["OrdersProduct"]["properties"] == {"product_id": {"type": "integer"}}
    order_body = document["paths"]["/api/v1/orders"]["post"]["requestBody"]
    assert order_body["content"]["application/json"]["schema"]["$ref"] == "#/components/schemas/OrdersProduct"
    assert document["x-bazaar-missing-services"] == ["auth", "profiles"]
    # Only what the public paths use: no internal bodies, the one bearer scheme the operations name.
    assert "InternalProducts" not in document["components"]["schemas"]
    assert "InternalLine" not in document["components"]["schemas"]
    assert document["components"]["securitySchemes"] == {"bearerAuth": {"type": "http", "scheme": "bearer"}}
    assert document["servers"] == [{"url": "/"}]
    # The gateway's own operations bring their components (they dangled before).
    services_schema = document["paths"]["/api/v1/gateway/services"]["get"]["responses"]["200"]
    assert services_schema["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/GatewayServices"}
    assert {"GatewayServices", "GatewayRoutes", "Problem", "FieldError"} <= set(document["components"]["schemas"])


def test_the_merged_document_is_valid_openapi(api_client, backend, fresh_upstream_client, settings):
    from openapi_spec_validator import validate

    settings.GATEWAY_PUBLIC_URLS = ["https://api.bazaar.example"]
    backend("catalog").schema = _schema("catalog", {}, {})

    document = api_client.get("/api/schema/openapi.json").json()

    validate(document)
    assert document["servers"] == [{"url": "https://api.bazaar.example"}]


def test_docs_page_works_offline(api_client):
    response = api_client.get("/api/docs")

    assert response.status_code == 200
    page = response.content.decode()
    assert "swagger-ui" in page
    assert "/static/gateway/drf_spectacular_sidecar/swagger-ui-dist/" in page
    assert "cdn.jsdelivr.net" not in page
    assert "/api/schema/openapi.json" in page


def test_docs_assets_are_served_by_the_gateway_itself(client):
    response = client.get("/static/gateway/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js")

    assert response.status_code == 200
    assert b"".join(response.streaming_content)[:2000]
