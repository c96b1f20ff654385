"""The gateway's routing table: routes are data, kept here and nowhere else.

A request is matched against :data:`ROUTES` in order; the **first** route whose prefix matches
(``path == prefix`` or ``path`` starts with ``prefix + "/"``), whose ``methods`` include the method
(``None``: any method) and whose ``exact`` flag allows it, wins. More specific routes therefore come
before the catch-all route of their service. Paths under ``/internal`` are never routed.

Per route:

* ``service`` — the discovery name the request goes to;
* ``auth`` — ``True``: a valid access token is required at the edge (401 otherwise);
* ``roles`` — if not empty, the token must carry one of them (403 otherwise);
* ``rate_class`` — the rate-limit class (see ``ratelimit.py``); ``None`` means the default class,
  ``anonymous`` (per client address) or ``user`` (per user id) depending on the caller;
* ``connect_timeout`` / ``read_timeout`` — seconds, per upstream attempt;
* ``retry`` — whether idempotent requests may be retried on another instance (a request whose
  connection was refused is always retried: nothing was sent), and at most how many attempts.

The same table is shown in the gateway admin and documented in ``gateway/README.md``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace

from bazaar_common.auth.tokens import ROLE_ADMIN, ROLE_MERCHANT
from bazaar_common.http import CallPolicy

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
BLOCKED_PREFIXES = ("/internal/", "/internal")


@dataclass(frozen=True)
class RetryPolicy:
    idempotent: bool = True
    max_attempts: int = 3

    def describe(self) -> str:
        if not self.idempotent:
            return "only when nothing was sent"
        return f"idempotent methods, up to {self.max_attempts} attempts"


NO_RETRY = RetryPolicy(idempotent=False, max_attempts=2)
SAFE_RETRY = RetryPolicy()


@dataclass(frozen=True)
class Route:
    prefix: str
    service: str
    methods: frozenset[str] | None = None
    exact: bool = False
    auth: bool = False
    roles: frozenset[str] = frozenset()
    rate_class: str | None = None
    connect_timeout: float = 1.0
    read_timeout: float = 5.0
    retry: RetryPolicy = SAFE_RETRY
    description: str = ""
    policy: CallPolicy = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(
            self,
            "policy",
            CallPolicy(
                connect_timeout=self.connect_timeout,
                read_timeout=self.read_timeout,
                max_attempts=self.retry.max_attempts,
                retry_idempotent=self.retry.idempotent,
            ),
        )

    def matches(self, method: str, path: str) -> bool:
        if self.methods is not None and method not in self.methods:
            return False
        if path == self.prefix:
            return True
        return not self.exact and path.startswith(self.prefix) and path[len(self.prefix)] == "/"

    def describe(self) -> dict[str, object]:
        return {
            "prefix": self.prefix + ("" if self.exact else "/…"),
            "service": self.service,
            "methods": sorted(self.methods) if self.methods else ["*"],
            "auth": self.auth,
            "roles": sorted(self.roles),
            "rate_class": self.rate_class or "anonymous / user",
            "connect_timeout": self.connect_timeout,
            "read_timeout": self.read_timeout,
            "retry": self.retry.describe(),
            "description": self.description,
        }


POST = frozenset({"POST"})
AUTH_PUBLIC = frozenset({"POST", "OPTIONS"})

ROUTES: tuple[Route, ...] = (
    # --- auth: sign-up, login, refresh and the public keys need no token --------------------
    Route(
        "/api/v1/auth/token",
        "auth",
        methods=AUTH_PUBLIC,
        exact=True,
        rate_class="login",
        retry=NO_RETRY,
        description="Login (stricter rate limit per client address)",
    ),
    Route(
        "/api/v1/auth/register",
        "auth",
        methods=AUTH_PUBLIC,
        exact=True,
        rate_class="login",
        retry=NO_RETRY,
        description="Sign up",
    ),
    Route(
        "/api/v1/auth/token/refresh",
        "auth",
        methods=AUTH_PUBLIC,
        exact=True,
        retry=NO_RETRY,
        description="Refresh (the refresh token is the credential)",
    ),
    Route(
        "/api/v1/auth/logout",
        "auth",
        methods=AUTH_PUBLIC,
        exact=True,
        retry=NO_RETRY,
        description="Logout (the refresh token is the credential)",
    ),
    Route(
        "/api/v1/auth/password/reset",
        "auth",
        methods=AUTH_PUBLIC,
        rate_class="login",
        retry=NO_RETRY,
        description="Password reset and its confirm step",
    ),
    Route(
        "/api/v1/auth/.well-known/jwks.json",
        "auth",
        methods=READ_METHODS,
        exact=True,
        description="Public keys (JWKS)",
    ),
    Route(
        "/api/v1/auth/users",
        "auth",
        auth=True,
        roles=frozenset({ROLE_ADMIN}),
        description="User administration (roles, deactivation): admins only",
    ),
    Route("/api/v1/auth", "auth", auth=True, description="Account: me, password change, …"),
    # --- catalog: browsing is public, changes need a merchant or an admin --------------------
    Route(
        "/api/v1/catalog",
        "catalog",
        methods=READ_METHODS,
        read_timeout=3.0,
        description="Browse products and categories (public)",
    ),
    Route(
        "/api/v1/catalog",
        "catalog",
        methods=WRITE_METHODS,
        auth=True,
        roles=frozenset({ROLE_MERCHANT, ROLE_ADMIN}),
        description="Merchants manage their products and stock",
    ),
    # --- orders: checkout is the stricter class ---------------------------------------------
    Route(
        "/api/v1/orders",
        "orders",
        methods=POST,
        exact=True,
        auth=True,
        rate_class="checkout",
        read_timeout=10.0,
        retry=NO_RETRY,
        description="Checkout (Idempotency-Key)",
    ),
    Route(
        "/api/v1/orders",
        "orders",
        auth=True,
        read_timeout=10.0,
        description="Orders: list, detail, pay, cancel, ship",
    ),
    Route("/api/v1/cart", "orders", auth=True, description="The customer's cart"),
    # --- profiles ---------------------------------------------------------------------------
    Route(
        "/api/v1/profiles",
        "profiles",
        auth=True,
        read_timeout=10.0,
        description="Profiles, addresses, export and erasure",
    ),
)


def _with_env_timeouts(routes: tuple[Route, ...]) -> tuple[Route, ...]:
    """``GATEWAY_READ_TIMEOUTS="catalog=2.5,orders=12"`` overrides read timeouts per service."""
    overrides: dict[str, float] = {}
    for item in os.environ.get("GATEWAY_READ_TIMEOUTS", "").split(","):
        service, sep, seconds = item.partition("=")
        if sep:
            overrides[service.strip()] = float(seconds)
    if not overrides:
        return routes
    return tuple(
        replace(route, read_timeout=overrides[route.service]) if route.service in overrides else route
        for route in routes
    )


ACTIVE_ROUTES = _with_env_timeouts(ROUTES)
_FIRST_SEGMENT = "/api/v1/"


def is_blocked(path: str) -> bool:
    return path.startswith(BLOCKED_PREFIXES[0]) or path == BLOCKED_PREFIXES[1]


def match(method: str, path: str, routes: tuple[Route, ...] = ACTIVE_ROUTES) -> Route | None:
    """The route for ``method path``, or ``None`` when the gateway itself should answer."""
    if not path.startswith(_FIRST_SEGMENT):
        return None
    for route in routes:
        if route.matches(method, path):
            return route
    return None
