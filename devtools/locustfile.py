"""Load test of a running platform through the gateway (``make load``; start it with ``make up``).

It walks the whole customer journey against the demo seed, so it works out of the box: every
request it makes is one a correct platform answers with 2xx, and any other answer is a failure.

The mix (users, by weight):

=============  ======  ========================================================================
``Browser``    4       anonymous: product list, searches for words the seed contains, category
                       filter, categories, product detail (one request every 1-3 s)
``Customer``   3       signs up once, then journeys: browse → search → cart (add 1-2 items,
                       look at it) → checkout from the cart (``Idempotency-Key``) → wait until
                       the order is ``reserved`` (or ``rejected``: out of stock) → pay (3 in 4)
                       or cancel (every 4th, the first included) → order list → profile → privacy export
``Merchant``   1 user  the demo merchant: every 2-4 s restocks the product with the least stock
=============  ======  ========================================================================

Out of stock is a correct answer (the saga rejects the order), counted in the summary, not a
failure; the merchant's restocking keeps most orders reservable. At the end a summary prints how
often each journey step ran, how orders ended and how long created → reserved took. ``Pass
--csv <prefix>`` (as the e2e smoke run does) for machine-readable figures.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import Counter

from locust import HttpUser, between, events, task

DEMO_PASSWORD = "bazaar-demo-2026"
MERCHANT_EMAIL = "merchant@bazaar.test"
# Words that match the demo seed (names and descriptions), so searches return products.
SEARCH_TERMS = ("knife", "garden", "coffee", "headphones", "tent", "lamp", "bottle", "speaker")
RESERVE_TIMEOUT_SECONDS = 30
# Every step a customer journey takes; the summary (and the e2e smoke run) checks each ran.
JOURNEY_STEPS = (
    "browse", "search", "cart", "checkout", "reserved", "pay", "cancel", "orders", "profile", "export", "restock",
)  # fmt: skip

CANCEL_EVERY = 4  # of the reserved orders, every 4th (the first included) is cancelled, the rest paid

steps: Counter[str] = Counter()
outcomes: Counter[str] = Counter()
reserve_seconds: list[float] = []
_lock = threading.Lock()


def count(step: str, outcome: str | None = None) -> None:
    with _lock:
        steps[step] += 1
        if outcome:
            outcomes[outcome] += 1


def product_ids(user: HttpUser) -> list[int]:
    listing = user.client.get("/api/v1/catalog/products?page_size=50", name="products: list").json()
    return [product["id"] for product in listing["results"]]


class Browser(HttpUser):
    """An anonymous visitor: lists, searches, filters and opens products."""

    weight = 4
    wait_time = between(1.0, 3.0)

    def on_start(self) -> None:
        self.product_ids = product_ids(self)
        categories = self.client.get("/api/v1/catalog/categories", name="categories").json()
        self.category_ids = [category["id"] for category in flatten(categories)]

    @task(5)
    def list_products(self) -> None:
        self.client.get("/api/v1/catalog/products?page=1&ordering=price", name="products: list")
        count("browse")

    @task(3)
    def search(self) -> None:
        with self.client.get(
            f"/api/v1/catalog/products?q={random.choice(SEARCH_TERMS)}", name="products: search", catch_response=True
        ) as response:
            if response.ok and not response.json()["results"]:
                response.failure("a search for a word of the seed found nothing")
        count("search")

    @task(2)
    def by_category(self) -> None:
        if self.category_ids:
            category = random.choice(self.category_ids)
            self.client.get(f"/api/v1/catalog/products?category={category}", name="products: by category")

    @task(3)
    def product_detail(self) -> None:
        self.client.get(f"/api/v1/catalog/products/{random.choice(self.product_ids)}", name="products: detail")


def flatten(categories: object) -> list[dict]:
    """The category tree (a list, or a page with ``results``) as a flat list."""
    nodes = categories.get("results", []) if isinstance(categories, dict) else categories
    flat: list[dict] = []
    for node in nodes or []:
        flat.append(node)
        flat += flatten(node.get("children", []))
    return flat


class Customer(HttpUser):
    """A customer: signs up, then browses, fills a cart, checks out, pays or cancels."""

    weight = 3
    wait_time = between(1.0, 3.0)

    def on_start(self) -> None:
        email = f"load-{uuid.uuid4().hex[:12]}@example.com"
        password = f"Load-{uuid.uuid4().hex}"
        self.client.post("/api/v1/auth/register", json={"email": email, "password": password}, name="auth: register")
        tokens = self.client.post(
            "/api/v1/auth/token", json={"email": email, "password": password}, name="auth: token"
        ).json()
        self.client.headers["Authorization"] = f"Bearer {tokens['access']}"
        self.product_ids = product_ids(self)
        self.journeys = 0

    @task
    def journey(self) -> None:
        self.journeys += 1
        self.client.get("/api/v1/catalog/products?in_stock=true", name="products: list")
        count("browse")
        self.client.get(f"/api/v1/catalog/products?q={random.choice(SEARCH_TERMS)}", name="products: search")
        count("search")
        for product_id in random.sample(self.product_ids, k=random.randint(1, 2)):
            self.client.post(
                "/api/v1/cart/items", json={"product_id": product_id, "quantity": 1}, name="cart: add item"
            )
        self.client.get("/api/v1/cart", name="cart: view")
        count("cart")
        order = self.checkout()
        if order is not None:
            self.settle(order)
        self.client.get("/api/v1/orders", name="orders: list")
        count("orders")
        self.client.get("/api/v1/profiles/me", name="profile: view")
        count("profile")
        self.client.get("/api/v1/profiles/me/export", name="profile: export")
        count("export")

    def checkout(self) -> dict | None:
        response = self.client.post(
            "/api/v1/orders", json={}, headers={"Idempotency-Key": uuid.uuid4().hex}, name="orders: checkout"
        )
        count("checkout")
        return response.json() if response.status_code == 202 else None

    def settle(self, order: dict) -> None:
        """Wait for the saga (created → reserved/rejected), then pay or cancel."""
        started = time.monotonic()
        status = order["status"]
        while status == "pending" and time.monotonic() - started < RESERVE_TIMEOUT_SECONDS:
            time.sleep(0.25)
            status = self.client.get(f"/api/v1/orders/{order['id']}", name="orders: status").json()["status"]
        elapsed = time.monotonic() - started
        settled = status in ("reserved", "rejected")
        events.request.fire(
            request_type="SAGA", name="orders: created → reserved", response_time=elapsed * 1000, response_length=0,
            exception=None if settled else TimeoutError(f"still {status} after {elapsed:.0f}s"),
        )  # fmt: skip
        if status == "rejected":
            count("reserved", "rejected (out of stock)")
            return
        if status != "reserved":
            return
        with _lock:
            reserve_seconds.append(elapsed)
            cancel = len(reserve_seconds) % CANCEL_EVERY == 1
        count("reserved")
        if not cancel:
            pay = f"/api/v1/orders/{order['id']}/pay"
            self.client.post(pay, json={"card_token": "tok_success"}, name="orders: pay")
            count("pay", "paid")
        else:
            self.client.post(
                f"/api/v1/orders/{order['id']}/cancel", json={"reason": "load test"}, name="orders: cancel"
            )
            count("cancel", "cancelled")


class Merchant(HttpUser):
    """The demo merchant: keeps the shelves stocked while customers buy."""

    fixed_count = 1
    wait_time = between(2.0, 4.0)

    def on_start(self) -> None:
        tokens = self.client.post(
            "/api/v1/auth/token", json={"email": MERCHANT_EMAIL, "password": DEMO_PASSWORD}, name="auth: token"
        ).json()
        self.client.headers["Authorization"] = f"Bearer {tokens['access']}"

    @task
    def restock(self) -> None:
        listing = self.client.get("/api/v1/catalog/products?page_size=50", name="products: list").json()
        lowest = min(listing["results"], key=lambda product: product["available"])
        self.client.post(
            f"/api/v1/catalog/merchant/products/{lowest['id']}/stock-adjustments",
            json={"delta": 20, "reason": "load test restock"},
            name="merchant: restock",
        )
        count("restock")


@events.test_stop.add_listener
def summary(environment: object, **kwargs: object) -> None:
    """How often each step ran, how orders ended, how long the saga took."""
    lines = ["", "Journey summary", "  steps: " + ", ".join(f"{step} {steps[step]}" for step in JOURNEY_STEPS)]
    missing = [step for step in JOURNEY_STEPS if not steps[step]]
    if missing:
        lines.append(f"  steps that never ran (run longer or with more users): {', '.join(missing)}")
    lines.append("  orders: " + (", ".join(f"{name} {n}" for name, n in outcomes.most_common()) or "none"))
    if reserve_seconds:
        ordered = sorted(reserve_seconds)
        p50 = ordered[len(ordered) // 2]
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
        lines.append(f"  created → reserved: p50 {p50:.2f}s, p99 {p99:.2f}s over {len(ordered)} orders")
    print("\n".join(lines), flush=True)
