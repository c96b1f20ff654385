"""Invariants of orders and stock, read from the databases themselves, and a shopping load.

Used by the consistency e2e tests and by ``make soak``. Reading the databases (not the APIs) is
the point: the APIs could agree with each other while a sold unit is back on sale.

:func:`consistency_violations` checks, per order of the test:

* every order is final or expectedly waiting (none ``pending``);
* a paid/shipped/delivered order's reservation is ``committed``; a reserved order's is ``held``;
  a cancelled or rejected order holds nothing (no ``held``/``committed`` reservation);
* no reservation is held or committed for an order that is not live (also for unknown orders);
* per product: on-hand and reserved equal the ledger's sums, and reserved equals the units of the
  held reservations;
* no order reserved or committed twice in the ledger, no order charged twice;
* no paid order's units ever went back on sale: no ``expire`` or ``release`` movement in the
  ledger for an order that is paid, shipped or delivered (a re-commit afterwards would make the
  counters agree again while the units were on sale in between: an oversell window).

:func:`wait_until_consistent` polls that until it holds or a bound passes; :func:`execute` writes
(a test's way to put a database into the state a fault leaves behind).

:class:`ShopperLoad` keeps checkouts and payments going from threads and counts every answer.
"""

from __future__ import annotations

import base64
import json
import sqlite3
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

LIVE_WITH_STOCK = {"reserved": "held", "paid": "committed", "shipped": "committed", "delivered": "committed"}
FINAL_OR_WAITING = {"reserved", "paid", "shipped", "delivered", "cancelled", "rejected"}


def query(url: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Rows of ``sql`` (``%s`` placeholders) from the database at ``url`` (PostgreSQL or SQLite)."""
    if url.startswith("sqlite"):
        path = urlsplit(url).path
        with sqlite3.connect(path.removeprefix("/") if path.startswith("//") else path, timeout=30) as conn:
            return conn.execute(sql.replace("%s", "?"), params).fetchall()
    import psycopg2

    pg = psycopg2.connect(url, connect_timeout=5)
    try:
        with pg.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()
    finally:
        pg.close()


def execute(url: str, sql: str, params: tuple[Any, ...] = ()) -> int:
    """Run one writing statement (``%s`` placeholders) on PostgreSQL; returns the rows it changed."""
    import psycopg2

    conn = psycopg2.connect(url, connect_timeout=5)
    try:
        with conn, conn.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.rowcount
    finally:
        conn.close()


def _in(values: list[str]) -> str:
    return ",".join(["%s"] * len(values)) or "NULL"


def _order_rows(orders_db: str, sql: str, ids: list[str]) -> list[tuple[Any, ...]]:
    """``sql`` with ``{ids}`` over order ids, comparing as the database stores a UUID (SQLite: 32
    hex digits), rows' first column given back as the canonical UUID string."""
    sqlite = orders_db.startswith("sqlite")
    stored = [uuid.UUID(i).hex if sqlite else i for i in ids]
    column = "order_id" if "orders_paymentattempt" in sql else "id"
    sql = sql.replace("{key}", column if sqlite else f"{column}::text").replace("{ids}", _in(stored))
    return [(str(uuid.UUID(str(row[0]))), *row[1:]) for row in query(orders_db, sql, tuple(stored))]


def consistency_violations(
    *, orders_db: str, catalog_db: str, order_ids: Iterable[str], product_ids: Iterable[int]
) -> list[str]:
    """Every broken invariant, as a sentence naming the order or product; empty when consistent."""
    ids = sorted(set(order_ids))
    products = sorted(set(product_ids))
    problems: list[str] = []
    orders = dict(_order_rows(orders_db, "SELECT {key}, status FROM orders_order WHERE {key} IN ({ids})", ids))
    reservations = dict(
        query(
            catalog_db, f"SELECT order_id, status FROM inventory_reservation WHERE order_id IN ({_in(ids)})", tuple(ids)
        )  # fmt: skip
    )
    for order_id in ids:
        status = orders.get(order_id)
        held = reservations.get(order_id, "none")
        if status is None:
            problems.append(f"order {order_id}: missing")
        elif status not in FINAL_OR_WAITING:
            problems.append(f"order {order_id}: still {status}")
        elif held != LIVE_WITH_STOCK.get(status, held if held not in ("held", "committed") else "nothing"):
            problems.append(f"order {order_id}: {status} but its reservation is {held}")
    problems += _orphan_holds(orders_db=orders_db, catalog_db=catalog_db)
    problems += _ledger(catalog_db=catalog_db, product_ids=products)
    problems += _duplicates(orders_db=orders_db, catalog_db=catalog_db, order_ids=ids)
    problems += _paid_stock_put_back(orders=orders, catalog_db=catalog_db)
    return problems


def wait_until_consistent(
    *, orders_db: str, catalog_db: str, order_ids: Iterable[str], product_ids: Iterable[int], timeout: float
) -> list[str]:
    """Poll :func:`consistency_violations` until there is none or ``timeout`` s pass; the last list."""
    ids, products = list(order_ids), list(product_ids)
    deadline = time.monotonic() + timeout
    while True:
        problems = consistency_violations(
            orders_db=orders_db, catalog_db=catalog_db, order_ids=ids, product_ids=products
        )
        if not problems or time.monotonic() > deadline:
            return problems
        time.sleep(1)


def _paid_stock_put_back(*, orders: dict[str, str], catalog_db: str) -> list[str]:
    paid = [order_id for order_id, status in orders.items() if status in ("paid", "shipped", "delivered")]
    if not paid:
        return []
    moves = query(
        catalog_db,
        f"SELECT order_id, reason, COUNT(*) FROM inventory_stockmovement "
        f"WHERE order_id IN ({_in(paid)}) AND reason IN ('expire', 'release') GROUP BY order_id, reason",
        tuple(paid),
    )
    return [f"order {o}: {orders[o]} but its units went back on sale ({n} '{reason}')" for o, reason, n in moves]


def _orphan_holds(*, orders_db: str, catalog_db: str) -> list[str]:
    """Held or committed stock for an order the order service does not have as live."""
    taken = query(
        catalog_db, "SELECT order_id, status FROM inventory_reservation WHERE status IN ('held', 'committed')"
    )
    if not taken:
        return []
    ids = [order_id for order_id, _ in taken]
    ids = [order_id for order_id in ids if _is_uuid(order_id)]
    statuses = dict(_order_rows(orders_db, "SELECT {key}, status FROM orders_order WHERE {key} IN ({ids})", ids))
    return [
        f"reservation {order_id}: {status} for an order that is {statuses.get(order_id, 'unknown')}"
        for order_id, status in taken
        if LIVE_WITH_STOCK.get(statuses.get(order_id, "")) != status
    ]


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _ledger(*, catalog_db: str, product_ids: list[int]) -> list[str]:
    problems = []
    for product_id in product_ids:
        stock_sql = "SELECT on_hand, reserved FROM inventory_stock WHERE product_id = %s"
        ((on_hand, reserved),) = query(catalog_db, stock_sql, (product_id,))
        ((ledger_on_hand, ledger_reserved),) = query(
            catalog_db,
            "SELECT COALESCE(SUM(delta_on_hand), 0), COALESCE(SUM(delta_reserved), 0) "
            "FROM inventory_stockmovement WHERE product_id = %s",
            (product_id,),
        )
        ((held_units,),) = query(
            catalog_db,
            "SELECT COALESCE(SUM(l.quantity), 0) FROM inventory_reservationline l "
            "JOIN inventory_reservation r ON r.id = l.reservation_id WHERE r.status = 'held' AND l.product_id = %s",
            (product_id,),
        )
        if (on_hand, reserved) != (ledger_on_hand, ledger_reserved):
            problems.append(
                f"product {product_id}: stock {on_hand}/{reserved}, ledger {ledger_on_hand}/{ledger_reserved}"
            )
        if reserved != held_units:
            problems.append(f"product {product_id}: {reserved} reserved but {held_units} units held")
    return problems


def _duplicates(*, orders_db: str, catalog_db: str, order_ids: list[str]) -> list[str]:
    problems = []
    moves = query(
        catalog_db,
        f"SELECT order_id, product_id, reason, COUNT(*) FROM inventory_stockmovement "
        f"WHERE order_id IN ({_in(order_ids)}) AND reason IN ('reserve', 'commit') "
        f"GROUP BY order_id, product_id, reason HAVING COUNT(*) > 1",
        tuple(order_ids),
    )
    problems += [f"order {o}: {n} '{reason}' movements of product {p}" for o, p, reason, n in moves]
    charges = _order_rows(
        orders_db,
        "SELECT {key}, COUNT(*) FROM orders_paymentattempt WHERE status = 'succeeded' "
        "AND {key} IN ({ids}) GROUP BY order_id HAVING COUNT(*) > 1",
        order_ids,
    )
    problems += [f"order {o}: charged {n} times" for o, n in charges]
    return problems


def sign_in_demo_accounts(api: Callable[..., Any]) -> dict[str, str]:
    """An access token per demo account (by email), waiting out the sign-in limit if it bites."""
    from bazaar_common.demo import DEMO_ACCOUNTS, DEMO_PASSWORD

    found = {}
    for account in DEMO_ACCOUNTS:
        for _ in range(6):
            response = api("POST", "/api/v1/auth/token", json={"email": account.email, "password": DEMO_PASSWORD})
            if response.status_code != 429:
                break
            time.sleep(float(response.headers.get("Retry-After", "5")))
        if response.status_code != 200:
            raise AssertionError(f"sign-in of {account.email}: {response.status_code} {response.text}")
        found[account.email] = response.json()["access"]
    return found


def create_product(api: Callable[..., Any], merchant_token: str, *, stock: int = 500) -> int:
    """A new product of the demo merchant with ``stock`` units; its id."""
    response = api(
        "POST",
        "/api/v1/catalog/merchant/products",
        merchant_token,
        json={"name": "Fault item", "sku": f"F-{uuid.uuid4().hex[:10]}", "price": "3.00", "initial_stock": stock},
    )
    if response.status_code != 201:
        raise AssertionError(f"product not created: {response.status_code} {response.text}")
    return int(response.json()["id"])


def token_expires_at(token: str) -> float:
    """The ``exp`` claim of a JWT (seconds since the epoch); 0 when it has none."""
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return float(claims.get("exp", 0))


@dataclass
class ShopperLoad:
    """Concurrent checkouts of one product, each order paid once it is reserved, from threads.

    ``api(method, path, token, **kwargs)`` sends through the gateway. Every answer is counted by
    ``(method, status)``; the orders placed are in ``order_ids``. ``renew(token) -> token``: a new
    access token when one expires during a long run (a 401 then is the token's age, not a fault).
    """

    api: Any
    tokens: list[str]
    product_id: int
    threads: int = 4
    pause: float = 0.2
    renew: Callable[[str], str] | None = None
    order_ids: list[str] = field(default_factory=list)
    answers: Counter[tuple[str, int]] = field(default_factory=Counter)
    failed_reads: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _workers: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> ShopperLoad:
        for index in range(self.threads):
            thread = threading.Thread(target=self._shop, args=(self.tokens[index % len(self.tokens)],), daemon=True)
            thread.start()
            self._workers.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._workers:
            thread.join(timeout=60)

    def _count(self, method: str, response: Any) -> Any:
        with self._lock:
            self.answers[(method, response.status_code)] += 1
        return response

    @property
    def server_errors(self) -> int:
        return sum(n for (_, status), n in self.answers.items() if status == 500)

    def _shop(self, token: str) -> None:
        while not self._stop.is_set():
            try:
                if self.renew is not None and self._expired(token):
                    token = self.renew(token)
                self._one_order(token)
            except Exception as exc:  # a connection error is a failed answer too
                with self._lock:
                    self.answers[("error", 0)] += 1
                    self.failed_reads.append(repr(exc))
            time.sleep(self.pause)

    # An order takes up to ~15 s from checkout to payment: a token renewed with less than this
    # left could expire between the two, and a 401 then would be the token's age, not a fault.
    RENEW_MARGIN_SECONDS = 60

    def _expired(self, token: str) -> bool:
        """Whether the access token expires within the margin, read from its own ``exp`` claim as a
        client does before a request (no signature check: it is our token, not a credential we
        trust)."""
        return token_expires_at(token) - time.time() < self.RENEW_MARGIN_SECONDS

    def _one_order(self, token: str) -> None:
        body = {"items": [{"product_id": self.product_id, "quantity": 1}]}
        placed = self._count("POST", self.api("POST", "/api/v1/orders", token, json=body))
        if placed.status_code != 202:
            return
        order_id = placed.json()["id"]
        with self._lock:
            self.order_ids.append(order_id)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not self._stop.is_set():
            read = self._count("GET", self.api("GET", f"/api/v1/orders/{order_id}", token))
            if read.status_code != 200:
                with self._lock:
                    self.failed_reads.append(f"GET {order_id}: {read.status_code}")
                return
            if read.json()["status"] == "reserved":
                payment = {"card_token": "tok_success"}
                self._count("POST", self.api("POST", f"/api/v1/orders/{order_id}/pay", token, json=payment))
                return
            if read.json()["status"] != "pending":
                return
            time.sleep(0.3)
