"""Edge checks: the caller's token, client address, CORS, headers to strip and to add."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterable

from django.http.request import split_domain_port, validate_host

from bazaar_common.auth.tokens import Principal, verify_access_token

# RFC 9110 §7.6.1 hop-by-hop headers, plus proxy-only ones; never passed either way.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
# Headers that claim an identity, or that only the gateway may set: a client's are dropped.
IDENTITY_HEADER_PREFIXES = ("x-user-", "x-auth-", "x-bazaar-", "x-service-", "x-forwarded-", "x-real-ip")
IDENTITY_HEADERS = frozenset(
    {"x-user", "x-user-id", "x-user-roles", "x-user-email", "remote-user", "x-remote-user", "forwarded"}
)
_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


def valid_traceparent(value: str | None) -> bool:
    """W3C Trace Context: version ``ff`` and all-zero ids are invalid."""
    if not value:
        return False
    found = _TRACEPARENT.match(value)
    if found is None:
        return False
    version, trace_id, parent_id, _flags = found.groups()
    return version != "ff" and trace_id != "0" * 32 and parent_id != "0" * 16


def is_stripped(name: str) -> bool:
    """``name`` in lower case."""
    return name in HOP_BY_HOP or name in IDENTITY_HEADERS or name.startswith(IDENTITY_HEADER_PREFIXES)


class HostCheck:
    """Django's ``ALLOWED_HOSTS`` rule for every request the gateway takes, the proxied ones too
    (they never become a Django request, so nothing else would look at their Host).

    The host is what Django would take: the ``Host`` header, else ``SERVER_NAME``; its port does
    not matter. With ``DEBUG`` and no ``ALLOWED_HOSTS`` Django allows the loopback names: so does
    this. The answer for each distinct allowed host is kept (a few entries; refused ones are not,
    so a stream of invented names cannot grow the table).
    """

    MAX_KNOWN = 256

    def __init__(self, allowed_hosts: Iterable[str], *, debug: bool = False) -> None:
        allowed = list(allowed_hosts)
        if debug and not allowed:
            allowed = [".localhost", "127.0.0.1", "[::1]"]
        self._allowed = allowed
        self._known: set[str] = set()

    def allows(self, environ: dict[str, object]) -> bool:
        host = environ.get("HTTP_HOST") or environ.get("SERVER_NAME") or ""
        if not isinstance(host, str):
            return False
        if host in self._known:
            return True
        domain, _port = split_domain_port(host)
        if not domain or not validate_host(domain, self._allowed):
            return False
        if len(self._known) < self.MAX_KNOWN:
            self._known.add(host)
        return True


class TokenVerifier:
    """verify_access_token with a small cache: the same token is checked once per process until
    it expires (signature checks are the costliest step of the edge)."""

    def __init__(self, max_entries: int = 10_000) -> None:
        self._cache: dict[str, Principal] = {}
        self._max_entries = max_entries
        self._lock = threading.Lock()

    def verify(self, token: str) -> Principal:
        principal = self._cache.get(token)
        if principal is not None and not principal.claims.get("exp", 0) > time.time():
            self._cache.pop(token, None)
            principal = None
        if principal is None:
            principal = verify_access_token(token)  # refuses a non-numeric exp, so the above holds
            with self._lock:
                if len(self._cache) >= self._max_entries:
                    self._cache.clear()
                self._cache[token] = principal
        # No revocation lookup here: every service makes it on every request (its port can be
        # reached without the gateway), so a revoked token proxied by the gateway is refused by
        # the service it reaches, on that very request. Checking here as well cost a second Redis
        # round trip per request, a quarter of the gateway's CPU (bazaar_devtools.bench_revocation).
        return principal

    def clear(self) -> None:
        self._cache.clear()


def bearer_token(header: str | None) -> str | None:
    """The token of ``Authorization: Bearer <token>``; ``""`` if the header is malformed."""
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip() or " " in token.strip():
        return ""
    return token.strip()


def client_address(remote_addr: str, forwarded_for: str | None, trusted_proxies: int) -> str:
    """The client's address: ``REMOTE_ADDR``, or — behind ``trusted_proxies`` known proxies (a load
    balancer in front of the gateway) — the address those proxies saw."""
    if trusted_proxies <= 0 or not forwarded_for:
        return remote_addr
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    if len(hops) < trusted_proxies:
        return remote_addr
    return hops[-trusted_proxies]


class Cors:
    """CORS for the configured origins only (bearer tokens, so no credentials)."""

    ALLOW_HEADERS = "Authorization, Content-Type, Idempotency-Key, If-None-Match, X-Request-ID, traceparent, tracestate"
    EXPOSE_HEADERS = (
        "X-Request-ID, Retry-After, ETag, Location, RateLimit, RateLimit-Policy, "
        "RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset"
    )
    ALLOW_METHODS = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"

    def __init__(self, origins: Iterable[str], max_age: int = 600) -> None:
        self.origins = frozenset(origin.rstrip("/") for origin in origins)
        self.allow_all = "*" in self.origins
        self.max_age = str(max_age)

    def allowed(self, origin: str | None) -> bool:
        return bool(origin) and (self.allow_all or origin in self.origins)

    def response_headers(self, origin: str) -> list[tuple[str, str]]:
        return [
            ("Access-Control-Allow-Origin", origin),
            ("Access-Control-Expose-Headers", self.EXPOSE_HEADERS),
            ("Vary", "Origin"),
        ]

    def preflight_headers(self, origin: str) -> list[tuple[str, str]]:
        return [
            ("Access-Control-Allow-Origin", origin),
            ("Access-Control-Allow-Methods", self.ALLOW_METHODS),
            ("Access-Control-Allow-Headers", self.ALLOW_HEADERS),
            ("Access-Control-Max-Age", self.max_age),
            ("Vary", "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"),
        ]
