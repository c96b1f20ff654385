"""Issue 7 at the edge through real processes: rate limits shared by two gateways, body limit,
``/internal/`` from outside, spoofed identity headers."""

from __future__ import annotations

import json
import uuid

import requests
from openapi_spec_validator import validate

from bazaar_devtools.openapi import SNAPSHOT


def test_rate_limit_429_and_headers_shared_across_two_gateway_instances(platform):
    env = {"GATEWAY_RATE_LIMITS": "login=4/60", "GATEWAY_RATE_LIMIT_PREFIX": f"e2e-{uuid.uuid4().hex[:6]}"}
    first = platform.start_instance("gateway", **env)
    second = platform.start_instance("gateway", **env)
    try:
        answers = [
            requests.post(f"{gateway.url}/api/v1/auth/register", json={}, timeout=10)
            for gateway in (first, second, first, second, first)
        ]
        assert [a.status_code for a in answers[:4]] == [400, 400, 400, 400]  # auth's own answer
        refused = answers[4]
        assert refused.status_code == 429
        assert refused.headers["Content-Type"] == "application/problem+json"
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        assert refused.headers["RateLimit-Policy"] == '"login";q=4;w=60'
        assert refused.headers["RateLimit-Remaining"] == "0"
        assert [a.headers["RateLimit-Remaining"] for a in answers[:4]] == ["3", "2", "1", "0"]
    finally:
        platform.stop_instance(first)
        platform.stop_instance(second)


def test_body_too_large_is_413(platform, customer):
    _email, token = customer

    response = platform.api(
        "POST", "/api/v1/orders", token, data=b"{" + b" " * (2 * 1024 * 1024) + b"}",
        headers={"Content-Type": "application/json"},
    )  # fmt: skip

    assert response.status_code == 413
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.json()["status"] == 413


def test_internal_paths_are_not_reachable_from_outside(platform):
    for path in ("/internal/v1/auth/service-token", "/internal/v1/catalog/products?ids=1"):
        response = platform.api("POST" if "token" in path else "GET", path, json={})
        assert response.status_code == 404
        assert response.headers["Content-Type"] == "application/problem+json"


def test_spoofed_identity_headers_are_stripped(platform, customer):
    email, token = customer
    spoof = {"X-User-Id": "00000000-0000-0000-0000-000000000001", "X-User-Roles": "admin"}

    without_token = platform.api("GET", "/api/v1/orders", headers=dict(spoof))
    as_customer = platform.api("GET", "/api/v1/auth/me", token, headers=dict(spoof))
    admin_only = platform.api("GET", "/api/v1/gateway/services", token, headers=dict(spoof))

    assert without_token.status_code == 401
    assert as_customer.status_code == 200
    assert as_customer.json()["email"] == email
    assert "admin" not in as_customer.json().get("roles", [])
    assert admin_only.status_code == 403


def test_one_openapi_document_for_the_whole_public_api_and_offline_docs(platform):
    platform.ensure_one_instance_each()

    document = platform.api("GET", "/api/schema/openapi.json").json()
    docs = platform.api("GET", "/api/docs")

    prefixes = {"/".join(path.split("/")[:4]) for path in document["paths"]}
    assert {"/api/v1/auth", "/api/v1/catalog", "/api/v1/orders", "/api/v1/profiles", "/api/v1/gateway"} <= prefixes
    assert not any(path.startswith("/internal") for path in document["paths"])
    assert "x-bazaar-missing-services" not in document
    # What the running gateway serves is the committed snapshot, and it is valid OpenAPI.
    validate(document)
    assert document == json.loads(SNAPSHOT.read_text()), "the served document differs from docs/openapi.json"
    assert "/api/v1/auth/.well-known/jwks.json" in document["paths"]
    assert docs.status_code == 200
    assert "cdn.jsdelivr.net" not in docs.text
    asset = platform.api("GET", "/static/gateway/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js")
    assert asset.status_code == 200
