"""Hostile input, through the gateway and directly on every service port (issue 11).

The invariant for every row: what a client sends is answered with a 4xx problem+json body that
names the limit or the field — never a 5xx, never an HTML page, never a leaked setting — and no
amount of it opens a breaker for other callers.
"""

from __future__ import annotations

import uuid

import pytest
import requests

from bazaar_common.demo import DEMO_MERCHANT, DEMO_PASSWORD

DEEP = ("[" * 10_000 + "]" * 10_000).encode()
MANY_PARAMS = "&".join(f"p{index}=1" for index in range(5_000))
BIG_BODY = b'{"x": "' + b"a" * (3 * 1024 * 1024) + b'"}'
SECRET_MARKERS = ("SERVICE_CREDENTIALS", "Traceback", "redis://", "postgres://", "SECRET_KEY")

# (service, method, path, needs a token of this demo account or a fresh customer)
BODY_ENDPOINTS = (
    ("auth", "POST", "/api/v1/auth/register", None),
    ("auth", "POST", "/api/v1/auth/token", None),
    ("orders", "POST", "/api/v1/cart/items", "customer"),
    ("catalog", "POST", "/api/v1/catalog/merchant/products", "merchant"),
    ("orders", "POST", "/api/v1/orders", "customer"),
    ("profiles", "PATCH", "/api/v1/profiles/me", "customer"),
)
LIST_ENDPOINTS = (
    ("catalog", "/api/v1/catalog/products", None),
    ("orders", "/api/v1/orders", "customer"),
    ("profiles", "/api/v1/profiles/me/addresses", "customer"),
)


@pytest.fixture(scope="module")
def tokens(platform) -> dict[str, str]:
    _email, customer = platform.register_customer()
    return {"customer": customer, "merchant": platform.token(DEMO_MERCHANT.email, DEMO_PASSWORD)}


def _headers(tokens: dict[str, str], who: str | None, **extra: str) -> dict[str, str]:
    headers = {"Content-Type": "application/json", **extra}
    if who:
        headers["Authorization"] = f"Bearer {tokens[who]}"
    return headers


def _bases(platform, service: str) -> list[tuple[str, str]]:
    """The gateway and the service's own port: the same answer is owed on both."""
    return [("gateway", platform.gateway_url), (service, platform.url(service))]


def assert_client_problem(response: requests.Response, status: int, *words: str, where: str = "") -> dict:
    assert response.status_code == status, (where, response.status_code, response.text[:300])
    assert response.headers["Content-Type"].startswith("application/problem+json"), response.headers
    body = response.json()
    assert body["status"] == status
    text = response.text
    for word in words:
        assert word in text, (word, text[:300])
    for marker in SECRET_MARKERS:
        assert marker not in text
    return body


def test_deeply_nested_json_is_400_naming_the_limit_everywhere(platform, tokens):
    for service, method, path, who in BODY_ENDPOINTS:
        for where, base in _bases(platform, service):
            response = requests.request(method, base + path, data=DEEP, headers=_headers(tokens, who), timeout=15)
            assert_client_problem(response, 400, "32 levels", where=where)


def test_a_flood_of_bad_bodies_never_opens_the_breaker_for_sign_in(platform):
    # Given many anonymous bodies that the auth service refuses
    for _ in range(25):
        response = platform.api(
            "POST", "/api/v1/auth/register", data=DEEP, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 400
    # Then everybody else still signs up and signs in
    email, token = platform.register_customer()
    assert email.endswith("@example.com")
    assert token


def test_thousands_of_query_parameters_are_400_everywhere(platform, tokens):
    for service, path, who in LIST_ENDPOINTS:
        for where, base in _bases(platform, service):
            response = requests.get(f"{base}{path}?{MANY_PARAMS}", headers=_headers(tokens, who), timeout=15)
            assert_client_problem(response, 400, "1000", where=where)


def test_a_body_over_the_limit_is_413_on_every_service_port(platform, tokens):
    for service, method, path, who in BODY_ENDPOINTS:
        response = requests.request(
            method, platform.url(service) + path, data=BIG_BODY, headers=_headers(tokens, who), timeout=30
        )
        assert_client_problem(response, 413, "bytes")


@pytest.mark.parametrize("service", ["gateway", "auth", "catalog", "orders", "profiles"])
@pytest.mark.parametrize("path", ["/api/v1/catalog/products", "/admin/login/", "/no/such/page"])
def test_a_foreign_host_header_is_a_problem_without_any_secret(platform, service, path):
    base = platform.gateway_url if service == "gateway" else platform.url(service)
    response = requests.get(base + path, headers={"Host": "evil.example"}, timeout=10)
    # The gateway's proxy path too: a foreign Host is refused there, not proxied.
    body = assert_client_problem(response, 400, "Host")
    assert body["errors"] == [{"field": "Host", "reason": "not in ALLOWED_HOSTS"}], body


@pytest.mark.parametrize("product_id", [2**63, 10**30])
def test_out_of_range_product_ids_are_400_and_trip_no_breaker(platform, tokens, product_id):
    customer = tokens["customer"]
    for _ in range(8):
        checkout = platform.api(
            "POST", "/api/v1/orders", customer, json={"items": [{"product_id": product_id, "quantity": 1}]}
        )
        assert_client_problem(checkout, 400, "product_id")
        cart = platform.api("POST", "/api/v1/cart/items", customer, json={"product_id": product_id, "quantity": 1})
        assert_client_problem(cart, 400, "product_id")
    # Another customer's reads of the same service are untouched.
    _email, other = platform.register_customer()
    assert platform.api("GET", "/api/v1/orders", other).status_code == 200
    too_big_path = platform.api("GET", f"/api/v1/catalog/products/{10**30}")
    assert too_big_path.status_code in (400, 404), too_big_path.text
    assert too_big_path.headers["Content-Type"].startswith("application/problem+json")


def test_user_sign_in_brute_force_does_not_throttle_the_service_token_exchange(platform):
    # Given ~30 failed sign-ins from one address (directly on auth, which trusts the loopback proxy)
    auth = platform.url("auth")
    address = {"X-Forwarded-For": f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.7"}
    refused = 0
    for _ in range(35):
        response = requests.post(
            f"{auth}/api/v1/auth/token",
            json={"email": f"nobody-{uuid.uuid4().hex[:6]}@example.com", "password": "wrong-password"},
            headers=address,
            timeout=10,
        )
        assert response.status_code in (401, 429)
        refused += response.status_code == 429
    assert refused > 0, "the sign-in limit per address never answered 429"
    # Then a service exchanging its credentials from that same address still gets its token
    client_id, secret = next(iter(platform.platform.credentials.items()))
    exchange = requests.post(
        f"{auth}/internal/v1/auth/service-token",
        json={"client_id": client_id, "client_secret": secret},
        headers=address,
        timeout=10,
    )
    assert exchange.status_code == 200, exchange.text
    assert exchange.json()["access"]


def test_two_cart_adds_never_make_a_line_above_the_cap(platform):
    _email, customer = platform.register_customer()
    product_id = platform.api("GET", "/api/v1/catalog/products").json()["results"][0]["id"]
    first = platform.api("POST", "/api/v1/cart/items", customer, json={"product_id": product_id, "quantity": 1000})
    assert first.status_code in (200, 201), first.text
    second = platform.api("POST", "/api/v1/cart/items", customer, json={"product_id": product_id, "quantity": 1000})
    assert_client_problem(second, 400, "quantity", "1000")
    cart = platform.api("GET", "/api/v1/cart", customer).json()
    assert [item["quantity"] for item in cart["items"]] == [1000]


def test_tokens_and_personal_data_are_not_stored_and_gateway_answers_carry_security_headers(platform, tokens):
    email = f"private-{uuid.uuid4().hex[:8]}@example.com"
    password = f"Pw-{uuid.uuid4().hex}"
    assert platform.api("POST", "/api/v1/auth/register", json={"email": email, "password": password}).status_code == 201
    signed_in = platform.api("POST", "/api/v1/auth/token", json={"email": email, "password": password})
    assert signed_in.status_code == 200
    assert signed_in.headers["Cache-Control"] == "no-store"
    refreshed = platform.api("POST", "/api/v1/auth/token/refresh", json={"refresh": signed_in.json()["refresh"]})
    assert refreshed.status_code == 200
    assert refreshed.headers["Cache-Control"] == "no-store"
    profile = platform.api("GET", "/api/v1/profiles/me", tokens["customer"])
    assert profile.status_code == 200
    assert profile.headers["Cache-Control"] == "no-store"
    for path in ("/api/v1/orders", "/api/v1/cart", "/api/v1/profiles/me/addresses"):
        private = platform.api("GET", path, tokens["customer"])
        assert (private.status_code, private.headers.get("Cache-Control")) == (200, "no-store"), path
    missing = platform.api("GET", "/no/such/page")
    assert missing.status_code == 404
    assert missing.headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert missing.headers["X-Content-Type-Options"] == "nosniff"
    products = platform.api("GET", "/api/v1/catalog/products")
    assert products.headers.get("Cache-Control") != "no-store"  # public reads stay cacheable
    # proxied answers carry security headers too (the gateway's, where the service set none)
    for proxied in (products, profile):
        assert proxied.headers["X-Content-Type-Options"] == "nosniff"
        assert proxied.headers["X-Frame-Options"] == "DENY"
        assert proxied.headers["Referrer-Policy"] in ("no-referrer", "same-origin")
        assert proxied.headers["Cross-Origin-Opener-Policy"] == "same-origin"


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b'{"email": "\xff\xfe@example.com", "password": "x"}', ()),
        (b'{"email": "a@example.com", "password": NaN}', ()),
        (b'{"email": "a@example.com", "password": ' + b"9" * 5000 + b"}", ()),
        (b'{"email": "a@example.com"', ()),
        (b"\x00" * 64, ()),
    ],
    ids=["invalid-utf8", "nan", "5000-digit-number", "truncated", "nul-bytes"],
)
def test_malformed_bodies_are_400_through_the_gateway_and_on_the_port(platform, body, words):
    for where, base in _bases(platform, "auth"):
        response = requests.post(
            base + "/api/v1/auth/register", data=body, headers={"Content-Type": "application/json"}, timeout=15
        )
        assert_client_problem(response, 400, *words, where=where)


def test_huge_numbers_in_a_checkout_body_are_400_naming_the_field(platform, tokens):
    for where, base in _bases(platform, "orders"):
        for quantity in (10**30, -(2**63), 1.5, "1e400"):
            response = requests.post(
                base + "/api/v1/orders",
                json={"items": [{"product_id": 1, "quantity": quantity}]},
                headers=_headers(tokens, "customer"),
                timeout=15,
            )
            assert_client_problem(response, 400, "quantity", where=f"{where} {quantity!r}")


def test_no_secret_reaches_any_log(platform, tokens):
    # Given sign-ins that fail and succeed, a password change refused, and service-token exchanges
    # refused and granted (with every hostile request of this module before it)
    email = f"logs-{uuid.uuid4().hex[:8]}@example.com"
    password = f"Pw-{uuid.uuid4().hex}"
    wrong = f"Wrong-{uuid.uuid4().hex}"
    assert platform.api("POST", "/api/v1/auth/register", json={"email": email, "password": password}).status_code == 201
    assert platform.api("POST", "/api/v1/auth/token", json={"email": email, "password": wrong}).status_code == 401
    access = platform.token(email, password)
    change = platform.api(
        "POST", "/api/v1/auth/password/change", access, json={"current_password": wrong, "new_password": wrong}
    )
    assert change.status_code in (400, 403)
    auth = platform.url("auth")
    client_id, secret = next(iter(platform.platform.credentials.items()))
    exchange = f"{auth}/internal/v1/auth/service-token"
    refused = requests.post(exchange, json={"client_id": client_id, "client_secret": secret[::-1]}, timeout=10)
    assert refused.status_code == 401
    assert requests.post(exchange, json={"client_id": client_id, "client_secret": secret}, timeout=10).ok

    # Then no process logged a password, a service secret or a bearer token
    logs = {path.name: path.read_text(errors="replace") for path in platform.platform.log_dir.glob("*.log")}
    assert logs, "no process logs found"
    secrets = {
        "password": password,
        "wrong password": wrong,
        "customer token": tokens["customer"],
        "user token": access,
        **{f"{name} secret": value for name, value in platform.platform.credentials.items()},
    }
    leaks = [(what, name) for what, value in secrets.items() for name, text in logs.items() if value in text]
    assert leaks == []
