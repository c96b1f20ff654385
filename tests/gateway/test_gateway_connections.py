"""The gateway's database serves only its admin: proxying opens no database connection, and the
connections its own pages open are closed at the end of the request (none held per thread)."""

from __future__ import annotations

import threading

import pytest
from django.conf import settings
from django.db import connections
from django.db.backends.signals import connection_created


@pytest.fixture
def opened():
    seen: list[str] = []
    lock = threading.Lock()

    def count(sender, connection, **kwargs):
        with lock:
            seen.append(threading.current_thread().name)

    connection_created.connect(count)
    yield seen
    connection_created.disconnect(count)


def test_proxied_requests_open_no_database_connection(gateway, backend, opened):
    backend("catalog")

    answers = [gateway.request("GET", "/api/v1/catalog/products") for _ in range(20)]

    assert [answer.status for answer in answers] == [200] * 20
    assert opened == []


def test_the_gateway_keeps_no_connection_after_a_request():
    assert settings.DATABASES["default"]["CONN_MAX_AGE"] == 0
    assert all(conn.settings_dict["CONN_MAX_AGE"] == 0 for conn in connections.all())
