"""Rate limiting in Redis: classes, subjects, headers, sharing between gateways, failing open."""

from __future__ import annotations

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from gateway.routing.ratelimit import RateLimiter, parse_limits

pytestmark = pytest.mark.django_db(databases=[])

LOGIN = {"Content-Type": "application/json"}


def test_login_class_answers_429_with_retry_after_and_ratelimit_headers(gateway, backend):
    auth = backend("auth")

    answers = [
        gateway.request("POST", "/api/v1/auth/token", body=b'{"email":"a@b.c"}', headers=LOGIN) for _ in range(4)
    ]

    assert [answer.status for answer in answers] == [200, 200, 200, 429]
    assert [answer.headers["RateLimit-Remaining"] for answer in answers] == ["2", "1", "0", "0"]
    refused = answers[3]
    assert refused.headers["Content-Type"] == "application/problem+json"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.headers["RateLimit-Policy"] == '"login";q=3;w=60'
    assert refused.headers["RateLimit"] == f'"login";r=0;t={refused.headers["RateLimit-Reset"]}'
    assert refused.headers["RateLimit-Limit"] == "3"
    assert refused.json() == {
        "type": "about:blank",
        "title": "Too many requests",
        "status": 429,
        "detail": "Too many requests; slow down.",
    }
    assert auth.hits == 3


def test_the_limit_is_shared_by_every_gateway_instance(gateway_factory, backend):
    auth = backend("auth")
    first, second = gateway_factory(), gateway_factory()

    statuses = [
        gateway.request("POST", "/api/v1/auth/token", body=b"{}", headers=LOGIN).status
        for gateway in (first, second, first, second)
    ]

    assert statuses == [200, 200, 200, 429]
    assert auth.hits == 3


def test_checkout_is_limited_per_user(gateway, backend, token_for):
    backend("orders")
    alice = {"Authorization": f"Bearer {token_for('11111111-1111-4111-8111-111111111111')}"}
    bob = {"Authorization": f"Bearer {token_for('22222222-2222-4222-8222-222222222222')}"}

    alice_statuses = [gateway.request("POST", "/api/v1/orders", body=b"{}", headers=alice).status for _ in range(3)]
    bob_status = gateway.request("POST", "/api/v1/orders", body=b"{}", headers=bob).status
    alice_reads = gateway.request("GET", "/api/v1/orders", headers=alice)

    assert alice_statuses == [200, 200, 429]
    assert bob_status == 200
    assert alice_reads.status == 200  # other routes are in the (larger) user class
    assert alice_reads.headers["RateLimit-Policy"] == '"user";q=1000;w=60'


def test_anonymous_callers_are_limited_per_address_and_users_separately(gateway_factory, backend, token_for):
    backend("catalog")
    gateway = gateway_factory(limits="anonymous=2/60,user=5/60")
    user = {"Authorization": f"Bearer {token_for()}"}

    anonymous = [gateway.request("GET", "/api/v1/catalog/products").status for _ in range(3)]
    signed_in = gateway.request("GET", "/api/v1/catalog/products", headers=user)

    assert anonymous == [200, 200, 429]
    assert signed_in.status == 200
    assert signed_in.headers["RateLimit-Remaining"] == "4"


def test_limiter_fails_open_when_redis_is_unreachable(gateway_factory, backend):
    catalog = backend("catalog")
    unreachable = redis.Redis(host="127.0.0.1", port=1, retry=Retry(NoBackoff(), 0))
    gateway = gateway_factory(limits="anonymous=1/60", limiter_redis=unreachable)

    answers = [gateway.request("GET", "/api/v1/catalog/products") for _ in range(3)]

    assert [answer.status for answer in answers] == [200, 200, 200]
    assert "RateLimit" not in answers[0].headers
    assert catalog.hits == 3


def test_large_limits_are_leased_in_batches_and_small_ones_counted_exactly(redis_client):
    limiter = RateLimiter(redis_client, parse_limits("user=1000/60,login=3/60"), prefix="test-lease")
    redis_client.delete("test-lease:user:user:u1", "test-lease:login:ip:1.2.3.4")

    busy = [limiter.check("user", "user:u1") for _ in range(25)]
    logins = [limiter.check("login", "ip:1.2.3.4") for _ in range(4)]

    assert [decision.remaining for decision in busy] == list(range(999, 974, -1))
    assert all(decision.allowed for decision in busy)
    assert int(redis_client.get("test-lease:user:user:u1")) == 40  # two leases of 20
    assert [decision.allowed for decision in logins] == [True, True, True, False]
    assert int(redis_client.get("test-lease:login:ip:1.2.3.4")) == 3  # the refusal was decided locally
