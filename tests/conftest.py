"""Fixtures shared by every service's tests (each suite runs with its own --ds settings)."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from bazaar_common.auth import testing as auth_testing


@pytest.fixture(scope="session", autouse=True)
def _trust_test_signing_key() -> None:
    """Services verify tokens against a JWKS; in tests that JWKS holds a throw-away test key."""
    auth_testing.install_test_jwks()


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def token_for():
    """``token_for(user_id, roles)``: a valid access token for that caller."""

    def make(user_id: str | None = None, roles: tuple[str, ...] = ("customer",), **claims) -> str:
        return auth_testing.make_token(user_id, roles, **claims)

    return make


@pytest.fixture
def client_as(token_for):
    """``client_as(user_id, roles)``: an APIClient sending that caller's bearer token."""

    def make(user_id: str | None = None, roles: tuple[str, ...] = ("customer",)) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(user_id, roles)}")
        return client

    return make


@pytest.fixture(autouse=True)
def _clear_cache(request: pytest.FixtureRequest) -> None:
    """Each service test starts with an empty cache (Redis, on the suite's own database index).

    Not for end-to-end tests: there Redis holds the running platform's registry.
    """
    if "e2e" in request.node.path.parts:
        return
    from django.core.cache import cache

    cache.clear()


@pytest.fixture(scope="session")
def span_exporter():
    """Spans finished in this test process, kept in memory (OpenTelemetry's global tracer provider
    can be set once per process, so it is installed here once, when a test first asks for it)."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter


@pytest.fixture
def traced(monkeypatch, span_exporter):
    """Tracing on in this process as ``init_observability`` leaves it for outgoing calls (urllib3
    client spans, the resilient client's named after the service), with no spans recorded yet."""
    from opentelemetry.instrumentation.urllib3 import URLLib3Instrumentor

    from bazaar_common import observability

    monkeypatch.setattr(observability, "_tracing", True)
    observability.instrument_http_client()
    span_exporter.clear()
    yield span_exporter
    URLLib3Instrumentor().uninstrument()
