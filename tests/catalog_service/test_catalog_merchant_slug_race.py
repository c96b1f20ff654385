"""Two admins opening a merchant with one slug at the same moment: one merchant, one 409, no 500.

The slug is unique by the database's constraint (a check before the insert would let both pass).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connections
from factories import new_user_id

from catalog_service.products.models import Merchant, MerchantMember

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
BASE = "/api/v1/catalog/merchant"


def test_concurrent_duplicate_merchant_slug_answers_one_201_and_one_409(client_as):
    clients = [client_as(new_user_id(), ("admin",)) for _ in range(4)]
    owners = [new_user_id() for _ in clients]
    barrier = threading.Barrier(len(clients))

    def create(index: int):
        try:
            barrier.wait(timeout=30)
            body = {"name": f"Shop {index}", "slug": "same-shop", "owner_id": owners[index]}
            return clients[index].post(f"{BASE}/merchants", body, format="json")
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=len(clients)) as pool:
        responses = list(pool.map(create, range(len(clients))))

    statuses = sorted(response.status_code for response in responses)
    assert statuses == [201, 409, 409, 409]
    conflict = next(response for response in responses if response.status_code == 409)
    assert conflict["Content-Type"] == "application/problem+json"
    assert conflict.json()["errors"] == [{"field": "slug", "reason": "A merchant with this slug exists."}]
    # invariant: exactly one merchant with that slug, and exactly one owner row (the winner's)
    assert Merchant.objects.filter(slug="same-shop").count() == 1
    winner = next(response for response in responses if response.status_code == 201)
    assert list(MerchantMember.objects.filter(merchant__slug="same-shop").values_list("user_id", flat=True)) == [
        owners[[r.status_code for r in responses].index(201)]
    ]
    assert winner.json()["slug"] == "same-shop"


def test_sequential_duplicate_merchant_slug_is_409_naming_the_field(client_as):
    admin = client_as(new_user_id(), ("admin",))
    first = admin.post(f"{BASE}/merchants", {"name": "A", "slug": "dup", "owner_id": new_user_id()}, format="json")
    second = admin.post(f"{BASE}/merchants", {"name": "B", "slug": "dup", "owner_id": new_user_id()}, format="json")

    assert first.status_code == 201
    assert second.status_code == 409
    assert second.json()["code"] == "slug_taken"
    assert Merchant.objects.filter(slug="dup").count() == 1
