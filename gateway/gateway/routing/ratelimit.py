"""Rate limiting in Redis, shared by every gateway instance and worker.

A fixed window per (class, subject): ``INCRBY`` + ``PEXPIRE`` in a Lua script. Each gateway process
leases a few requests at a time (1 for small limits such as login and checkout, so those are exact;
at most 20 and 2 % of the limit for large ones), so most requests of a busy caller cost no round
trip. Subjects: the user id for authenticated callers, the client address for anonymous ones;
the ``login`` class always counts per client address (the account is not known before login).

Classes and their limits come from ``GATEWAY_RATE_LIMITS``, e.g.
``"anonymous=120/60,user=600/60,login=10/60,checkout=30/60"`` (requests / window seconds; the
defaults). With ``DEBUG`` on, where every client is 127.0.0.1, the defaults are 20–60× roomier;
classes named in ``GATEWAY_RATE_LIMITS`` always win.

Answers carry ``RateLimit-Policy`` and ``RateLimit`` (draft-ietf-httpapi-ratelimit-headers) plus
the widely used ``RateLimit-Limit``/``-Remaining``/``-Reset``; over the limit: 429 with
``Retry-After``. If Redis cannot be reached the limiter fails open (requests pass, a warning is
logged) and does not ask Redis again for a few seconds, so an outage of Redis costs no latency.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from dataclasses import dataclass

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

logger = logging.getLogger(__name__)

DEFAULT_LIMITS = "anonymous=120/60,user=600/60,login=10/60,checkout=30/60"
# In development every client is 127.0.0.1 (the browser, the e2e suite, scripts): roomier limits.
DEVELOPMENT_LIMITS = "anonymous=3000/60,user=6000/60,login=600/60,checkout=600/60"

MAX_LEASE = 20

_SCRIPT = """
local count = redis.call('INCRBY', KEYS[1], ARGV[2])
if count == tonumber(ARGV[2]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}
"""


@dataclass(frozen=True)
class LimitClass:
    name: str
    limit: int
    window: int

    @property
    def lease(self) -> int:
        """Requests a gateway process takes from Redis at once: 1 for small limits (exact), at
        most 2 % of the limit and at most 20 for large ones."""
        return max(1, min(MAX_LEASE, self.limit // 50))

    def policy_header(self) -> str:
        return f'"{self.name}";q={self.limit};w={self.window}'


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit_class: LimitClass
    remaining: int
    reset_seconds: int

    def headers(self) -> list[tuple[str, str]]:
        cls = self.limit_class
        return [
            ("RateLimit-Policy", cls.policy_header()),
            ("RateLimit", f'"{cls.name}";r={self.remaining};t={self.reset_seconds}'),
            ("RateLimit-Limit", str(cls.limit)),
            ("RateLimit-Remaining", str(self.remaining)),
            ("RateLimit-Reset", str(self.reset_seconds)),
        ]


def parse_limits(spec: str) -> dict[str, LimitClass]:
    classes: dict[str, LimitClass] = {}
    for item in spec.split(","):
        item = item.strip()
        if not item:
            continue
        name, sep, rule = item.partition("=")
        count, slash, window = rule.partition("/")
        if not sep or not slash:
            raise ValueError(f"rate limit {item!r} is not 'class=requests/seconds'")
        classes[name.strip()] = LimitClass(name.strip(), int(count), int(window))
    return classes


class RateLimiter:
    def __init__(
        self,
        client: redis.Redis,
        classes: dict[str, LimitClass],
        *,
        prefix: str = "bazaar:ratelimit",
        pause_seconds: float = 5.0,
    ) -> None:
        self.redis = client
        self.classes = classes
        self.prefix = prefix
        self.pause_seconds = pause_seconds
        self._script = client.register_script(_SCRIPT)
        self._paused_until = 0.0
        self._leases: dict[str, _Lease] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_env(cls, redis_url: str, *, debug: bool = False, prefix: str = "bazaar:ratelimit") -> RateLimiter:
        # No retries with backoff (redis-py's default takes ~5 s on a refused connection).
        client = redis.Redis.from_url(
            redis_url, socket_connect_timeout=0.2, socket_timeout=0.2, retry=Retry(NoBackoff(), 0)
        )
        defaults = DEVELOPMENT_LIMITS if debug else DEFAULT_LIMITS
        classes = parse_limits(defaults) | parse_limits(os.environ.get("GATEWAY_RATE_LIMITS", ""))
        return cls(client, classes, prefix=prefix)

    def check(self, class_name: str, subject: str) -> Decision | None:
        """Count one request; ``None`` when the limiter is unavailable (fail open).

        To keep Redis off most requests, a process *leases* ``LimitClass.lease`` requests at a
        time (one ``INCRBY``) and spends them locally until the lease or the window runs out; a
        refusal is remembered locally until the window resets. Leases make the count at most
        ``lease × processes`` generous within a window; classes with small limits lease 1, so
        login and checkout are exact.
        """
        limit_class = self.classes.get(class_name)
        if limit_class is None:
            return None
        now = time.monotonic()
        key = f"{self.prefix}:{class_name}:{subject}"
        with self._lock:
            lease = self._leases.get(key)
            if lease is not None and now < lease.reset_at:
                if lease.left > 0:
                    lease.left -= 1
                    return lease.decision(limit_class, now, allowed=True)
                if lease.exhausted:
                    return lease.decision(limit_class, now, allowed=False)
        if now < self._paused_until:
            return None
        size = limit_class.lease
        try:
            count, ttl_ms = self._script(keys=[key], args=[limit_class.window * 1000, size])
        except redis.RedisError as exc:
            self._paused_until = now + self.pause_seconds
            logger.warning("rate limiter unavailable; letting requests through", extra={"error": str(exc)})
            return None
        count = int(count)
        granted = max(0, min(size, limit_class.limit - (count - size)))
        lease = _Lease(
            left=max(0, granted - 1),
            used_before=count - size,
            granted=granted,
            reset_at=now + int(ttl_ms) / 1000,
            exhausted=count >= limit_class.limit,
        )
        with self._lock:
            if len(self._leases) > 50_000:
                self._leases.clear()
            self._leases[key] = lease
        return lease.decision(limit_class, now, allowed=granted > 0)


@dataclass
class _Lease:
    left: int
    used_before: int
    granted: int
    reset_at: float
    exhausted: bool

    def decision(self, limit_class: LimitClass, now: float, *, allowed: bool) -> Decision:
        spent = self.used_before + (self.granted - self.left)
        return Decision(
            allowed=allowed,
            limit_class=limit_class,
            remaining=max(0, limit_class.limit - spent),
            reset_seconds=max(1, math.ceil(self.reset_at - now)),
        )
