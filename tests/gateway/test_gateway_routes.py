"""The routing table: which route, which policy, and that no route hides another."""

from __future__ import annotations

import pytest

from gateway.routing.routes import ROUTES, is_blocked, match


@pytest.mark.parametrize(
    ("method", "path", "service", "auth", "rate_class"),
    [
        ("POST", "/api/v1/auth/token", "auth", False, "login"),
        ("POST", "/api/v1/auth/register", "auth", False, "login"),
        ("POST", "/api/v1/auth/token/refresh", "auth", False, None),
        ("GET", "/api/v1/auth/.well-known/jwks.json", "auth", False, None),
        ("GET", "/api/v1/auth/me", "auth", True, None),
        ("POST", "/api/v1/auth/password/reset/confirm", "auth", False, "login"),
        ("GET", "/api/v1/catalog/products", "catalog", False, None),
        ("GET", "/api/v1/catalog", "catalog", False, None),
        ("POST", "/api/v1/catalog/products", "catalog", True, None),
        ("POST", "/api/v1/orders", "orders", True, "checkout"),
        ("GET", "/api/v1/orders", "orders", True, None),
        ("POST", "/api/v1/orders/12/pay", "orders", True, None),
        ("DELETE", "/api/v1/cart/items/3", "orders", True, None),
        ("GET", "/api/v1/cart", "orders", True, None),
        ("DELETE", "/api/v1/profiles/me", "profiles", True, None),
    ],
)
def test_routes_resolve_to_the_right_service_and_policy(method, path, service, auth, rate_class):
    route = match(method, path)

    assert route is not None
    assert (route.service, route.auth, route.rate_class) == (service, auth, rate_class)


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/authority",
        "/api/v1/catalogue/x",
        "/api/v1/ordersx",
        "/api/v1/gateway/services",
        "/api/docs",
        "/admin/",
        "/healthz",
        "/api/v2/catalog/products",
    ],
)
def test_paths_outside_the_routes_are_not_proxied(path):
    assert match("GET", path) is None


def test_role_rules_at_the_edge():
    assert match("POST", "/api/v1/auth/users/1/roles").roles == frozenset({"admin"})
    assert match("PUT", "/api/v1/catalog/products/1").roles == frozenset({"merchant", "admin"})
    assert match("GET", "/api/v1/orders/1").roles == frozenset()


def test_internal_paths_are_blocked():
    assert is_blocked("/internal/v1/auth/service-token")
    assert is_blocked("/internal")
    assert not is_blocked("/api/v1/catalog/internal/x")


def test_no_route_is_hidden_by_an_earlier_one():
    for route in ROUTES:
        for method in sorted(route.methods or {"GET", "POST", "PUT", "PATCH", "DELETE"}):
            found = match(method, route.prefix)
            # Only a more specific route for the same prefix (e.g. checkout = POST exactly) may win.
            assert found is route or found.prefix == route.prefix, (method, route.prefix, found)


def test_every_route_has_timeouts_and_at_most_three_attempts():
    for route in ROUTES:
        assert 0 < route.connect_timeout <= route.read_timeout <= 30
        assert 1 <= route.retry.max_attempts <= 3
        assert route.description
