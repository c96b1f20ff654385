"""Brute-force limits on sign-in and password reset, shared by every instance through Redis.

Counters are per account (a hash of the normalised email, whether or not it has an account, so a
429 tells nothing about existence) and per client address. Each counter is created with its window
as TTL and incremented in one MULTI/EXEC, so concurrent instances never lose an increment and a
counter can never be left without expiry. When a counter reaches its limit the caller gets 429 with
``Retry-After`` = the seconds left in that window. For people's passwords Redis being away fails
closed (503): without the counters there would be no limit at all. The service-token exchange fails
open instead: its secrets are long random strings no one guesses within an outage, and every
service depends on getting its token.

Each limiter has its own scope, so a brute force against user sign-in from an address never
throttles the service-token exchange from that address (in development every service calls auth
from 127.0.0.1).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

import redis
from django.conf import settings

from bazaar_common.domain import TooManyRequests
from bazaar_common.errors import ServiceUnavailable

logger = logging.getLogger(__name__)
_clients: dict[str, redis.Redis] = {}
_DECR_IF_EXISTS = "if redis.call('exists', KEYS[1]) == 1 then return redis.call('decr', KEYS[1]) end return 0"


class TooManyAttempts(TooManyRequests):
    default_detail = "Too many attempts. Try again later."


def _redis() -> redis.Redis:
    url = settings.ABUSE_REDIS_URL
    client = _clients.get(url)
    if client is None:
        client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
        _clients[url] = client
    return client


def account_fingerprint(identifier: str) -> str:
    """Keys never hold the email itself."""
    return hashlib.sha256(identifier.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class AttemptLimiter:
    scope: str
    per_account: int
    per_address: int
    window_seconds: int
    # True: a Redis outage lets the attempt through (logged) instead of refusing it.
    fail_open: bool = False

    def _keys(self, account: str | None, address: str | None) -> list[tuple[str, int]]:
        prefix = f"bazaar:auth:abuse:{self.scope}"
        keys = []
        if account:
            keys.append((f"{prefix}:account:{account_fingerprint(account)}", self.per_account))
        if address:
            keys.append((f"{prefix}:address:{address}", self.per_address))
        return keys

    def attempt(self, *, account: str | None, address: str | None) -> None:
        """Count this attempt before it runs; 429 once either counter is over its limit.

        Counting first (one atomic INCR per counter) means a burst of parallel guesses cannot all
        slip past a check made before any of them was recorded. A successful attempt is handed back
        with :meth:`forgive`, so in effect only failures count.
        """
        keys = self._keys(account, address)
        try:
            pipe = _redis().pipeline(transaction=True)
            for key, _limit in keys:
                pipe.set(key, 0, ex=self.window_seconds, nx=True)
                pipe.incr(key)
                pipe.ttl(key)
            replies = pipe.execute()
        except redis.RedisError as exc:
            logger.error("abuse counter update failed", extra={"scope": self.scope, "error": str(exc)})
            if self.fail_open:
                return
            raise ServiceUnavailable("This is temporarily unavailable; retry later.", retry_after=5) from exc
        for index, (_key, limit) in enumerate(keys):
            count, ttl = replies[3 * index + 1], replies[3 * index + 2]
            if int(count) > limit:
                raise TooManyAttempts(retry_after=max(int(ttl), 1))

    def forgive(self, *, account: str | None, address: str | None) -> None:
        """The attempt succeeded: the account starts afresh, the address gets its attempt back."""
        try:
            client = _redis()
            for key, _limit in self._keys(account, None):
                client.delete(key)
            for key, _limit in self._keys(None, address):
                # Only an existing counter: a DECR on an expired key would create one with no TTL.
                client.eval(_DECR_IF_EXISTS, 1, key)
        except redis.RedisError:
            logger.warning("abuse counter reset failed", extra={"scope": self.scope})


def login_limiter() -> AttemptLimiter:
    """Shared by the API login, the internal admin-login and this service's own admin."""
    return AttemptLimiter(
        scope="login",
        per_account=settings.LOGIN_MAX_FAILURES_PER_ACCOUNT,
        per_address=settings.LOGIN_MAX_FAILURES_PER_ADDRESS,
        window_seconds=settings.LOGIN_FAILURE_WINDOW_SECONDS,
    )


def password_reset_limiter() -> AttemptLimiter:
    return AttemptLimiter(
        scope="password-reset",
        per_account=settings.PASSWORD_RESET_MAX_PER_ACCOUNT,
        per_address=settings.PASSWORD_RESET_MAX_PER_ADDRESS,
        window_seconds=settings.PASSWORD_RESET_WINDOW_SECONDS,
    )


def password_check_limiter() -> AttemptLimiter:
    """Password confirmations of a signed-in user (verify-password, deactivation, change)."""
    return AttemptLimiter(
        scope="password-check",
        per_account=settings.LOGIN_MAX_FAILURES_PER_ACCOUNT,
        per_address=settings.LOGIN_MAX_FAILURES_PER_ADDRESS,
        window_seconds=settings.LOGIN_FAILURE_WINDOW_SECONDS,
    )


def service_token_limiter() -> AttemptLimiter:
    """Failed service-token exchanges, per client id *at* an address and per address.

    Keying the client-id counter by address too means a stranger guessing secrets for ``orders``
    from elsewhere cannot lock the real orders service out; user sign-in failures are counted in
    another scope and never reach these counters.
    """
    return AttemptLimiter(
        scope="service-token",
        per_account=settings.SERVICE_TOKEN_MAX_FAILURES_PER_CLIENT,
        per_address=settings.SERVICE_TOKEN_MAX_FAILURES_PER_ADDRESS,
        window_seconds=settings.SERVICE_TOKEN_FAILURE_WINDOW_SECONDS,
        fail_open=True,
    )
