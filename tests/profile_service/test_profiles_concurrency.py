"""On PostgreSQL: concurrent first requests create one profile; concurrent defaults stay single."""

from __future__ import annotations

import threading
import uuid

import pytest
from django.db import connection
from rest_framework.test import APIClient

from bazaar_common.auth import testing as auth_testing
from profile_service.profiles.models import Address, Profile

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _run_concurrently(count: int, action) -> list:
    barrier = threading.Barrier(count)
    results: list = [None] * count

    def worker(index: int) -> None:
        try:
            barrier.wait()
            results[index] = action(index)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


def _client(user_id: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {auth_testing.make_token(user_id, ('customer',))}")
    return client


def test_concurrent_first_requests_create_one_profile():
    user_id = str(uuid.uuid4())

    statuses = _run_concurrently(8, lambda i: _client(user_id).get("/api/v1/profiles/me").status_code)

    assert statuses == [200] * 8
    assert Profile.objects.filter(user_id=user_id).count() == 1


def test_concurrent_new_defaults_leave_exactly_one(client_as):
    user_id = str(uuid.uuid4())
    client = _client(user_id)
    ids = [
        client.post(
            "/api/v1/profiles/me/addresses",
            {"full_name": "J", "line1": f"{i} Road", "city": "Berlin", "country": "DE"},
            format="json",
        ).json()["id"]
        for i in range(6)
    ]

    statuses = _run_concurrently(
        6,
        lambda i: (
            _client(user_id)
            .patch(f"/api/v1/profiles/me/addresses/{ids[i]}", {"is_default_shipping": True}, format="json")
            .status_code
        ),
    )

    assert statuses == [200] * 6
    assert Address.objects.filter(profile__user_id=user_id, is_default_shipping=True).count() == 1
