"""Readiness checks only what a pod's traffic needs; a degraded dependency shows, not empties.

Invariant: with Redis unreachable a service whose database is up stays ready (200, "degraded")
and exports bazaar_dependency_up{dependency="redis"} 0; a required dependency down is a 503
problem with Retry-After.
"""

from __future__ import annotations

import pytest
from django.test import Client, override_settings
from prometheus_client import REGISTRY

from bazaar_devtools.platform import free_port

pytestmark = pytest.mark.django_db


def dependency_up(name: str) -> float | None:
    return REGISTRY.get_sample_value("bazaar_dependency_up", {"dependency": name})


def test_redis_down_degrades_but_keeps_the_pod_ready() -> None:
    with override_settings(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0"):
        response = Client().get("/readyz")

    assert response.status_code == 200
    assert response.json() == {"status": "degraded", "service": "catalog", "degraded": ["redis: ConnectionError"]}
    assert dependency_up("redis") == 0
    assert dependency_up("database") == 1


def test_a_required_dependency_down_is_not_ready() -> None:
    with override_settings(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0", READINESS_REQUIRED=("database", "redis")):
        response = Client().get("/readyz")

    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response.json()["checks"] == ["redis: ConnectionError"]


def test_everything_up_is_ready_and_counted_up() -> None:
    response = Client().get("/readyz")

    assert response.json() == {"status": "ready", "service": "catalog"}
    assert dependency_up("redis") == 1
