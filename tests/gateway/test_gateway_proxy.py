"""The proxy path through real HTTP: forwarding, headers, problems, edge auth, body limit, CORS."""

from __future__ import annotations

import json
import time

import pytest

from gateway.routing.routes import Route

PROBLEM = "application/problem+json"
pytestmark = pytest.mark.django_db(databases=[])


def test_forwards_method_path_query_headers_and_body_and_returns_upstream_answer(gateway, backend, token_for):
    catalog = backend("catalog", "catalog-1")
    token = token_for("7b1d8f1e-0000-4000-8000-000000000001", ("merchant",))

    response = gateway.request(
        "PATCH",
        "/api/v1/catalog/products/5?fields=name&fields=price",
        body=b'{"name":"Lamp"}',
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json", "X-Custom": "1"},
    )

    assert response.status == 200
    echoed = response.json()
    assert echoed["method"] == "PATCH"
    assert echoed["path"] == "/api/v1/catalog/products/5"
    assert echoed["query"] == "fields=name&fields=price"
    assert echoed["body"] == '{"name":"Lamp"}'
    assert echoed["headers"]["content-type"] == "application/json"
    assert echoed["headers"]["x-custom"] == "1"
    assert echoed["headers"]["authorization"] == f"Bearer {token}"
    assert response.headers["X-Backend"] == "catalog-1"
    assert response.headers.getlist("Set-Cookie") == ["a=1; Path=/", "b=2; Path=/"]
    assert catalog.hits == 1


def test_upstream_client_errors_are_passed_through(gateway, backend):
    backend("catalog")

    response = gateway.request("GET", "/api/v1/catalog/status/409")

    assert response.status == 409
    assert response.json() == {"status": 409}


def test_request_id_is_kept_when_valid_and_replaced_when_not(gateway, backend):
    backend("catalog")

    kept = gateway.request("GET", "/api/v1/catalog/products", headers={"X-Request-ID": "req-12345678"})
    replaced = gateway.request("GET", "/api/v1/catalog/products", headers={"X-Request-ID": "bad id\u00e9<>"})
    created = gateway.request("GET", "/api/v1/catalog/products")

    assert kept.headers["X-Request-ID"] == "req-12345678"
    assert kept.json()["headers"]["x-request-id"] == "req-12345678"
    assert replaced.headers["X-Request-ID"] != "bad id\u00e9<>"
    assert len(replaced.headers["X-Request-ID"]) == 32
    assert replaced.json()["headers"]["x-request-id"] == replaced.headers["X-Request-ID"]
    assert len(created.headers["X-Request-ID"]) == 32


def test_valid_traceparent_is_passed_on_and_invalid_one_dropped(gateway, backend):
    backend("catalog")
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

    good = gateway.request(
        "GET", "/api/v1/catalog/products", headers={"traceparent": traceparent, "tracestate": "v=1"}
    ).json()
    bad = gateway.request(
        "GET", "/api/v1/catalog/products", headers={"traceparent": "00-" + "0" * 32 + "-b7ad6b7169203331-01"}
    ).json()

    assert good["headers"]["traceparent"] == traceparent
    assert good["headers"]["tracestate"] == "v=1"
    assert "traceparent" not in bad["headers"]


def test_identity_and_hop_by_hop_headers_from_clients_are_stripped(gateway, backend):
    backend("catalog")

    echoed = gateway.request(
        "GET",
        "/api/v1/catalog/products",
        headers={
            "X-User-Id": "00000000-0000-0000-0000-000000000001",
            "X-User-Roles": "admin",
            "X-User-Email": "root@example.com",
            "X-Auth-User": "admin",
            "X-Forwarded-For": "6.6.6.6",
            "X-Real-IP": "6.6.6.6",
            "Forwarded": "for=6.6.6.6",
            "Proxy-Authorization": "Basic eA==",
            "TE": "trailers",
            "Connection": "keep-alive, X-Drop-Me",
            "X-Drop-Me": "1",
        },
    ).json()

    sent = echoed["headers"]
    for name in (
        "x-user-id",
        "x-user-roles",
        "x-user-email",
        "x-auth-user",
        "x-real-ip",
        "forwarded",
        "proxy-authorization",
        "te",
        "x-drop-me",
    ):
        assert name not in sent, name
    assert sent["x-forwarded-for"] == "127.0.0.1"  # the gateway's own view, not the client's claim
    assert sent["x-forwarded-proto"] == "http"


def test_internal_paths_are_never_routed(gateway, backend):
    catalog = backend("catalog")

    for path in ("/internal/v1/catalog/products?ids=1", "/internal", "/internal/"):
        response = gateway.request("GET", path)
        assert response.status == 404
        assert response.headers["Content-Type"] == PROBLEM
        assert response.json() == {
            "type": "about:blank",
            "title": "Not found",
            "status": 404,
            "detail": "Not found.",
        }
    assert catalog.hits == 0


def test_no_instance_is_a_503_problem_with_retry_after(gateway):
    response = gateway.request("GET", "/api/v1/catalog/products")

    assert response.status == 503
    assert response.headers["Content-Type"] == PROBLEM
    assert response.headers["Retry-After"] == "2"
    assert response.json() == {
        "type": "about:blank",
        "title": "Service unavailable",
        "status": 503,
        "detail": "No healthy instance of the catalog service.",
    }


def test_unreachable_instance_is_a_503_problem(gateway, registry, backend):
    dead = backend("catalog", "catalog-dead", register=False)
    registry.register(dead.instance())
    dead.stop()

    response = gateway.request("GET", "/api/v1/catalog/products")

    assert response.status == 503
    assert response.headers["Content-Type"] == PROBLEM
    assert response.headers["Retry-After"] == "2"
    assert response.json()["detail"] == "The catalog service is unavailable."


def test_slow_upstream_is_a_504_at_the_route_timeout(gateway_factory, backend):
    backend("catalog")
    quick = (Route("/api/v1/catalog", "catalog", read_timeout=0.3),)
    gateway = gateway_factory(routes=quick)

    started = time.monotonic()
    response = gateway.request("GET", "/api/v1/catalog/slow?seconds=2")
    elapsed = time.monotonic() - started

    assert response.status == 504
    assert response.headers["Content-Type"] == PROBLEM
    assert response.headers["Retry-After"] == "1"
    assert response.json() == {
        "type": "about:blank",
        "title": "Gateway timeout",
        "status": 504,
        "detail": "The catalog service did not answer within 0.3 s.",
    }
    assert 0.25 < elapsed < 1.5


def test_body_over_the_limit_is_413_and_never_forwarded(gateway, backend, token_for):
    catalog = backend("catalog")
    token = token_for(roles=("merchant",))

    response = gateway.request(
        "POST",
        "/api/v1/catalog/products",
        body=b"x" * 1025,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )

    assert response.status == 413
    assert response.headers["Content-Type"] == PROBLEM
    assert response.json() == {
        "type": "about:blank",
        "title": "Request body too large",
        "status": 413,
        "detail": "The request body is larger than 1024 bytes.",
    }
    assert catalog.hits == 0


def test_body_at_the_limit_is_forwarded(gateway, backend, token_for):
    backend("catalog")
    token = token_for(roles=("merchant",))

    response = gateway.request(
        "POST", "/api/v1/catalog/products", body=b"y" * 1024, headers={"Authorization": f"Bearer {token}"}
    )

    assert response.status == 200
    assert response.json()["body"] == "y" * 1024


def test_routes_needing_a_token_answer_401_before_forwarding(gateway, backend, token_for):
    orders = backend("orders")
    expired = token_for(lifetime=-120)

    missing = gateway.request("GET", "/api/v1/orders")
    malformed = gateway.request("GET", "/api/v1/orders", headers={"Authorization": "Token abc"})
    garbage = gateway.request("GET", "/api/v1/cart", headers={"Authorization": "Bearer not.a.jwt"})
    too_old = gateway.request("GET", "/api/v1/profiles/me", headers={"Authorization": f"Bearer {expired}"})

    for response in (missing, malformed, garbage, too_old):
        assert response.status == 401
        assert response.headers["Content-Type"] == PROBLEM
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="bazaar"'
    assert missing.json()["detail"] == "Authentication credentials were not provided."
    assert garbage.json()["detail"] == "Malformed token."
    assert too_old.json()["detail"] == "Token has expired."
    assert orders.hits == 0


def test_a_role_the_edge_can_decide_is_403(gateway, backend, token_for):
    catalog = backend("catalog")
    auth = backend("auth")
    customer = token_for(roles=("customer",))

    product_write = gateway.request(
        "POST", "/api/v1/catalog/products", body=b"{}", headers={"Authorization": f"Bearer {customer}"}
    )
    role_grant = gateway.request(
        "POST", "/api/v1/auth/users/abc/roles", body=b"{}", headers={"Authorization": f"Bearer {customer}"}
    )

    assert product_write.status == 403
    assert role_grant.status == 403
    assert product_write.json() == {
        "type": "about:blank",
        "title": "Forbidden",
        "status": 403,
        "detail": "Your role does not allow this operation.",
    }
    assert catalog.hits == 0
    assert auth.hits == 0


def test_valid_token_with_the_role_is_forwarded(gateway, backend, token_for):
    backend("orders")
    token = token_for(roles=("customer",))

    response = gateway.request("GET", "/api/v1/orders/42", headers={"Authorization": f"Bearer {token}"})

    assert response.status == 200
    assert response.json()["path"] == "/api/v1/orders/42"


def test_public_routes_need_no_token_and_tolerate_a_bad_one(gateway, backend):
    backend("catalog")
    backend("auth")

    browse = gateway.request("GET", "/api/v1/catalog/products", headers={"Authorization": "Bearer junk"})
    register = gateway.request("POST", "/api/v1/auth/register", body=b'{"email":"a@b.c"}')
    jwks = gateway.request("GET", "/api/v1/auth/.well-known/jwks.json")

    assert browse.status == 200
    assert register.status == 200
    assert register.json()["path"] == "/api/v1/auth/register"
    assert jwks.status == 200


def test_cors_preflight_for_an_allowed_origin(gateway, backend):
    catalog = backend("catalog")

    response = gateway.request(
        "OPTIONS",
        "/api/v1/orders",
        headers={"Origin": "https://shop.example", "Access-Control-Request-Method": "POST"},
    )

    assert response.status == 204
    assert response.headers["Access-Control-Allow-Origin"] == "https://shop.example"
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    assert "Authorization" in response.headers["Access-Control-Allow-Headers"]
    assert catalog.hits == 0


def test_cors_preflight_for_another_origin_is_refused(gateway):
    response = gateway.request(
        "OPTIONS",
        "/api/v1/catalog/products",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
    )

    assert response.status == 403
    assert "Access-Control-Allow-Origin" not in response.headers


def test_cors_headers_on_answers_only_for_allowed_origins(gateway, backend):
    backend("catalog")

    allowed = gateway.request("GET", "/api/v1/catalog/products", headers={"Origin": "https://shop.example"})
    other = gateway.request("GET", "/api/v1/catalog/products", headers={"Origin": "https://evil.example"})

    assert allowed.headers["Access-Control-Allow-Origin"] == "https://shop.example"
    assert "X-Request-ID" in allowed.headers["Access-Control-Expose-Headers"]
    assert allowed.headers["Vary"] == "Origin"
    assert "Access-Control-Allow-Origin" not in other.headers


def test_security_headers_on_proxied_answers_and_problems(gateway, backend):
    backend("catalog")

    for response in (
        gateway.request("GET", "/api/v1/catalog/products"),
        gateway.request("GET", "/internal/v1/x"),
    ):
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert response.headers["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"


def test_unrouted_paths_go_to_django_and_answer_json(gateway):
    health = gateway.request("GET", "/healthz")
    unknown = gateway.request("GET", "/api/v1/nothing-here")

    assert health.status == 200
    assert health.json() == {"status": "ok", "service": "gateway"}
    assert unknown.status == 404
    assert unknown.headers["Content-Type"] == PROBLEM
    assert json.loads(unknown.data)["status"] == 404


def test_every_proxied_request_is_logged_with_its_request_id(gateway_factory, backend, caplog):
    from bazaar_common.logging import ContextFilter

    backend("catalog")
    gateway = gateway_factory(access_log=True)
    caplog.handler.addFilter(ContextFilter("gateway"))

    with caplog.at_level("INFO", logger="bazaar.access"):
        gateway.request("GET", "/api/v1/catalog/products?x=1", headers={"X-Request-ID": "log-test-0001"})

    (record,) = [r for r in caplog.records if r.name == "bazaar.access"]
    assert (record.method, record.path, record.status) == ("GET", "/api/v1/catalog/products", 200)
    assert record.upstream_service == "catalog"
    assert record.request_id == "log-test-0001"
    assert record.duration_ms >= 0
