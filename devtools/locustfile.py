"""Load test of a running platform through the gateway (``make load``; start it with ``make up``).

Two kinds of users, in the proportions of a shop: many browsers, fewer buyers. Buyers sign up
once, then browse, fill a cart and check out with an Idempotency-Key. Targets only the gateway the
platform runs on this machine.
"""

from __future__ import annotations

import random
import uuid

from locust import HttpUser, between, task


class Browser(HttpUser):
    """An anonymous visitor: lists, searches, filters and opens products."""

    weight = 4
    wait_time = between(0.2, 1.0)

    def on_start(self) -> None:
        listing = self.client.get("/api/v1/catalog/products?page_size=50", name="products: list").json()
        self.product_ids = [product["id"] for product in listing.get("results", [])] or [1]

    @task(5)
    def list_products(self) -> None:
        self.client.get(f"/api/v1/catalog/products?page={random.randint(1, 2)}", name="products: list")

    @task(2)
    def search(self) -> None:
        self.client.get("/api/v1/catalog/products?q=mug&ordering=price", name="products: search")

    @task(3)
    def product_detail(self) -> None:
        self.client.get(f"/api/v1/catalog/products/{random.choice(self.product_ids)}", name="products: detail")


class Buyer(HttpUser):
    """A customer: signs up, browses, checks out, looks at their orders."""

    weight = 1
    wait_time = between(0.5, 2.0)

    def on_start(self) -> None:
        email = f"load-{uuid.uuid4().hex[:12]}@example.com"
        password = f"Load-{uuid.uuid4().hex}"
        self.client.post("/api/v1/auth/register", json={"email": email, "password": password}, name="auth: register")
        tokens = self.client.post(
            "/api/v1/auth/token", json={"email": email, "password": password}, name="auth: token"
        ).json()
        self.client.headers["Authorization"] = f"Bearer {tokens['access']}"
        listing = self.client.get("/api/v1/catalog/products?in_stock=true&page_size=50", name="products: list")
        self.product_ids = [product["id"] for product in listing.json().get("results", [])] or [1]

    @task(3)
    def browse(self) -> None:
        self.client.get(f"/api/v1/catalog/products/{random.choice(self.product_ids)}", name="products: detail")

    @task(1)
    def checkout(self) -> None:
        items = [{"product_id": random.choice(self.product_ids), "quantity": 1}]
        self.client.post(
            "/api/v1/orders",
            json={"items": items},
            headers={"Idempotency-Key": uuid.uuid4().hex},
            name="orders: checkout",
        )

    @task(2)
    def my_orders(self) -> None:
        self.client.get("/api/v1/orders", name="orders: list")
