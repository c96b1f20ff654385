"""Fixtures of the profile service's tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from fakes import SERVICE_CLIENT_ID, SERVICE_CLIENT_SECRET, FakeServices

from bazaar_common.auth import service_tokens


@pytest.fixture
def fake_services(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeServices]:
    monkeypatch.setenv("SERVICE_CLIENT_ID", SERVICE_CLIENT_ID)
    monkeypatch.setenv("SERVICE_CLIENT_SECRET", SERVICE_CLIENT_SECRET)
    service_tokens.forget_service_token()
    fakes = FakeServices()
    yield fakes
    fakes.close()
    service_tokens.forget_service_token()
    fakes.registry.invalidate()


@pytest.fixture
def user_id() -> str:
    return str(uuid.uuid4())


@pytest.fixture
def customer(client_as, user_id):
    """An API client signed in as the customer ``user_id``."""
    return client_as(user_id, ("customer",))
