"""One caller cannot open a breaker for everyone.

The rule (also in gateway/README.md): an upstream answer counts against a breaker only when it is
the instance's own server error — never a 4xx (what the client sent), never a 503 the service marks
as a dependency's outage. And each caller (a signed-in user, else a client address) may cause at
most ``max_failures`` such failures of one service within ``window_seconds``; past that, the
gateway answers that caller 429 with ``Retry-After`` itself, without calling the service, until
the window has moved on — unless the service is failing for everyone (its breaker, or every
instance's, open), which is an outage and answered 503 as usual. A service breaker needs more
failures in a row than any one caller may cause (10 against 3 by default), so a request crafted to
crash a service, sent again and again by one client, fails for that client only.
"""

from __future__ import annotations

import threading
import time
from collections import deque


class CallerFailureGuard:
    """Per-process counts of recent upstream failures per (service, caller)."""

    def __init__(self, *, max_failures: int = 3, window_seconds: float = 10.0, max_callers: int = 10_000) -> None:
        self.max_failures = max_failures
        self.window_seconds = window_seconds
        self._max_callers = max_callers
        self._failures: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, service: str, caller: str) -> float | None:
        """Seconds this caller must wait before calling ``service`` again, or None."""
        recent = self._failures.get((service, caller))
        if not recent or len(recent) < self.max_failures:
            return None
        now = time.monotonic()
        with self._lock:
            while recent and recent[0] <= now - self.window_seconds:
                recent.popleft()
            if len(recent) < self.max_failures:
                return None
            return recent[0] + self.window_seconds - now

    def record_failure(self, service: str, caller: str) -> None:
        now = time.monotonic()
        with self._lock:
            if len(self._failures) >= self._max_callers:
                self._failures.clear()  # a flood of distinct callers: start afresh, bounded memory
            recent = self._failures.setdefault((service, caller), deque(maxlen=self.max_failures))
            recent.append(now)
