import threading

import pytest
from auth_factories import PASSWORD, UserFactory  # noqa: I001 - this suite's factories module
from django.db import connection
from rest_framework.test import APIClient

REFRESH = "/api/v1/auth/token/refresh"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_refresh_token_presented_twice_at_the_same_moment_is_spent_once():
    """The outstanding row is locked: of two simultaneous rotations exactly one wins, and the other
    is treated as reuse (which also revokes what the winner got)."""
    UserFactory(email="race@example.com")
    pair = APIClient().post("/api/v1/auth/token", {"email": "race@example.com", "password": PASSWORD}, format="json")
    refresh = pair.json()["refresh"]
    barrier = threading.Barrier(2)
    results: list[tuple[int, dict]] = []

    def rotate() -> None:
        barrier.wait()
        response = APIClient().post(REFRESH, {"refresh": refresh}, format="json")
        results.append((response.status_code, response.json()))
        connection.close()

    threads = [threading.Thread(target=rotate) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(status for status, _ in results) == [200, 401]
    winner = next(body for status, body in results if status == 200)
    assert APIClient().post(REFRESH, {"refresh": winner["refresh"]}, format="json").status_code == 401
