"""The Host header on every path of the gateway (issue 11): a host it does not serve is a 400
problem naming the header, never proxied, never handed to Django."""

from __future__ import annotations

import pytest

from gateway.routing.edge import HostCheck

PROBLEM = "application/problem+json"
pytestmark = pytest.mark.django_db(databases=[])
HOST_PROBLEM = {
    "type": "about:blank",
    "title": "Invalid request",
    "status": 400,
    "detail": "The Host header names a host this service does not serve.",
    "errors": [{"field": "Host", "reason": "not in ALLOWED_HOSTS"}],
}


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/catalog/products",  # proxied, public
        "/api/v1/orders",  # proxied, needs a token (the Host is refused before the token is asked for)
        "/internal/v1/auth/service-token",  # refused at the edge anyway
        "/healthz",  # the gateway's own Django
        "/no/such/page",
    ],
)
def test_a_foreign_host_is_refused_on_every_path_and_never_proxied(gateway, backend, path):
    catalog = backend("catalog")
    orders = backend("orders")

    response = gateway.request("GET", path, headers={"Host": "evil.example"})

    assert response.status == 400
    assert response.headers["Content-Type"] == PROBLEM
    assert response.json() == HOST_PROBLEM
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert (catalog.hits, orders.hits) == (0, 0)


def test_loopback_hosts_and_ports_are_served_as_before(gateway, backend):
    catalog = backend("catalog")

    for host in ("127.0.0.1", "127.0.0.1:8000", "localhost:8000", "[::1]:8000"):
        response = gateway.request("GET", "/api/v1/catalog/products", headers={"Host": host})
        assert response.status == 200, (host, response.data[:200])
    assert catalog.hits == 4


def test_the_configured_hosts_are_served_and_nothing_else(gateway_factory, backend):
    catalog = backend("catalog")
    gateway = gateway_factory(allowed_hosts=("shop.example", ".api.example"))

    served = [
        gateway.request("GET", "/api/v1/catalog/products", headers={"Host": host}).status
        for host in ("shop.example", "SHOP.example:443", "eu.api.example", "api.example")
    ]
    refused = [
        gateway.request("GET", "/api/v1/catalog/products", headers={"Host": host}).status
        for host in ("127.0.0.1", "shop.example.evil", "evil.example", "shop.example@evil", "")
    ]

    assert served == [200, 200, 200, 200]
    assert refused == [400, 400, 400, 400, 400]
    assert catalog.hits == 4


def test_host_check_follows_djangos_rule():
    # Development: with DEBUG and no ALLOWED_HOSTS, the loopback names only (as Django)
    development = HostCheck([], debug=True)
    assert [development.allows({"HTTP_HOST": host}) for host in ("localhost", "a.localhost:1", "[::1]")] == [
        True,
        True,
        True,
    ]
    assert development.allows({"HTTP_HOST": "evil.example"}) is False
    # Without a Host header the server name counts; an empty list serves nobody
    assert HostCheck(["gw.internal"]).allows({"SERVER_NAME": "gw.internal"}) is True
    assert HostCheck([]).allows({"HTTP_HOST": "localhost"}) is False
    # "*" serves any well-formed host, still not a malformed one
    anything = HostCheck(["*"])
    assert anything.allows({"HTTP_HOST": "whatever.example:81"}) is True
    assert anything.allows({"HTTP_HOST": "bad host"}) is False


def test_refused_hosts_are_not_remembered():
    check = HostCheck(["shop.example"])
    for index in range(HostCheck.MAX_KNOWN * 2):
        assert check.allows({"HTTP_HOST": f"invented-{index}.example"}) is False
    assert check.allows({"HTTP_HOST": "shop.example"}) is True
    assert len(check._known) == 1
