"""The resilient HTTP client for calls between services and for the gateway's upstream calls.

Every call goes through the same steps:

1. **Service breaker** — if the service as a whole keeps failing, fail fast with 503 + Retry-After.
2. **Discovery** — the live instances of the service (Redis registry or static list), minus those
   an active health check took out of rotation and those whose own breaker is open.
3. **Load balancing** — least outstanding requests (ties broken round robin), chosen by measuring
   (see ``gateway/README.md``); round robin is available with ``balancer="round_robin"``.
4. **Pooled keep-alive connection** (urllib3) with connect and read timeouts.
5. **Retries only where safe** — a connection that failed before anything was sent (any method), or
   a reset connection / 502 / 503 / 504 for an idempotent method — always on a *different*
   instance, at most ``max_attempts`` tries, and only while the :class:`RetryBudget` allows (retries
   add at most ~20 % to upstream load, so retries cannot multiply an outage). A read timeout is
   never retried: the caller's time is spent.

Faults surface as :class:`~bazaar_common.errors.ServiceUnavailable` (503) or
:class:`~bazaar_common.errors.GatewayTimeout` (504), both carrying ``retry_after``.

Breaker state lives in the process. With several worker processes each keeps its own breakers: a
dead instance costs up to ``failure_threshold`` failed attempts *per process* before every process
stops sending to it, and each process sends its own half-open probes. Retries on another instance
hide those attempts from clients; the health checker takes the instance out of rotation anyway.
"""

from __future__ import annotations

import itertools
import json as jsonlib
import logging
import threading
import time
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar
from urllib.parse import urlencode

import urllib3
from circuitbreaker import STATE_CLOSED, STATE_HALF_OPEN, STATE_OPEN, CircuitBreaker
from prometheus_client import Counter, Gauge
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
)

from bazaar_common.discovery import Instance
from bazaar_common.errors import DEPENDENCY_FAULT, DEPENDENCY_FAULT_HEADER, GatewayTimeout, ServiceUnavailable
from bazaar_common.observability import tracing_enabled
from bazaar_common.request_id import REQUEST_ID_HEADER, current_request_id

if TYPE_CHECKING:
    from bazaar_common.contracts.http import Body

BodyT = TypeVar("BodyT", bound="Body")

logger = logging.getLogger(__name__)
# The instance the current attempt goes to, while the urllib3 call runs (read by name_attempt_span).
_attempt_instance: ContextVar[Instance | None] = ContextVar("bazaar_http_attempt", default=None)
MAX_HOST_POOLS = 128
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
# Answers that say "this instance could not serve it" and are worth another instance.
RETRYABLE_STATUSES = frozenset({502, 503, 504})


def counts_as_failure(status: int) -> bool:
    """Server errors count against a breaker; client errors (4xx) never do."""
    return status >= 500 and status not in (501, 505)


def is_dependency_fault(headers: Mapping[str, str]) -> bool:
    """The upstream says its 503 is a dependency's outage (its database, another service), not
    its own failure (see ``errors.DEPENDENCY_FAULT_HEADER``)."""
    return headers.get(DEPENDENCY_FAULT_HEADER) == DEPENDENCY_FAULT


def own_failure(status: int, headers: Mapping[str, str]) -> bool:
    """Counts against the instance's and the service's breakers: the instance's own server error.

    A dependency's outage answered by a healthy instance does not: a route that does not need
    that dependency must keep working.
    """
    return counts_as_failure(status) and not is_dependency_fault(headers)


class UpstreamFailure(Exception):
    """An upstream answered with a server error or could not be reached (counts for breakers)."""


class _ConnectFailed(UpstreamFailure):
    """Nothing was sent: always safe to try another instance."""


class _ReadTimedOut(UpstreamFailure):
    pass


class _ConnectionBroken(UpstreamFailure):
    """The request may have reached the upstream (reset, protocol error): retry only if idempotent."""


# --------------------------------------------------------------------------------------------
# Metrics (served on METRICS_PORT, see bazaar_common.metrics). The called service is the
# ``upstream`` label: ``service`` is the scraped process's own (set by the scrape config).
# --------------------------------------------------------------------------------------------
BREAKER_TRANSITIONS = Counter(
    "bazaar_circuit_breaker_transitions_total",
    "Circuit breaker state changes.",
    ["upstream", "kind", "state"],
)
# 0 closed, 1 half-open, 2 open. The highest of the live worker processes: one process that
# stopped calling an instance is worth seeing.
BREAKER_STATE = Gauge(
    "bazaar_circuit_breaker_state",
    "Circuit breaker state: 0 closed, 1 half-open, 2 open.",
    ["upstream", "kind", "instance"],
    multiprocess_mode="livemax",
)
BREAKER_STATE_VALUES = {STATE_CLOSED: 0, STATE_HALF_OPEN: 1, STATE_OPEN: 2}
UPSTREAM_ATTEMPTS = Counter(
    "bazaar_upstream_attempts_total",
    "Attempts to call an upstream instance, by outcome (ok, error_status, connect_failed, broken, timeout).",
    ["upstream", "outcome"],
)
UPSTREAM_RETRIES = Counter(
    "bazaar_upstream_retries_total", "Upstream attempts retried on another instance.", ["upstream"]
)
RETRY_BUDGET_EXHAUSTED = Counter(
    "bazaar_retry_budget_exhausted_total", "Retries refused by the retry budget.", ["upstream"]
)


# --------------------------------------------------------------------------------------------
# Circuit breaker
# --------------------------------------------------------------------------------------------
class ResilientBreaker(CircuitBreaker):
    """``circuitbreaker.CircuitBreaker`` plus what a shared, multi-threaded client needs.

    Why a subclass and not the package as is: we keep its failure predicate, threshold, recovery
    timing and its ``CircuitBreakerMonitor`` registry, but the package (a) lets *every* concurrent
    call through once the recovery timeout has passed (half-open is just "open but expired"), (b)
    is not thread safe (the failure counter is a plain ``+=``), (c) only checks the open state in
    its decorator, not in ``call()``, and (d) has no hook for state changes. This subclass adds a
    lock, at most ``half_open_probes`` concurrent probe calls in half-open (everyone else fails
    fast), explicit ``acquire``/``success``/``failure`` for callers that are not a single function
    call, and logs and counts every state change.
    """

    FAILURE_THRESHOLD = 5
    RECOVERY_TIMEOUT = 5
    EXPECTED_EXCEPTION = UpstreamFailure

    def __init__(
        self,
        name: str,
        *,
        service: str = "",
        kind: str = "instance",
        failure_threshold: int | None = None,
        recovery_timeout: float | None = None,
        half_open_probes: int = 1,
    ) -> None:
        super().__init__(
            failure_threshold=failure_threshold,
            recovery_timeout=recovery_timeout,
            name=name,
        )
        self.service = service
        self.kind = kind
        self.half_open_probes = half_open_probes
        self._probes_in_flight = 0
        self._lock = threading.Lock()
        self._reported_state = STATE_CLOSED
        self.changed_at = time.time()

    # The package's own bookkeeping, under our lock.
    def __exit__(self, exc_type: Any, exc_value: Any, traceback: Any) -> Literal[False]:
        with self._lock:
            super().__exit__(exc_type, exc_value, traceback)
            self._note_state()
        return False

    def call(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        probing = self.acquire()
        if probing is None:
            from circuitbreaker import CircuitBreakerError

            raise CircuitBreakerError(self)
        try:
            with self:
                return func(*args, **kwargs)
        finally:
            self._release(probing)

    def acquire(self) -> bool | None:
        """May a call go through? ``None``: no (open, or enough probes already out);
        ``True``: yes, as a half-open probe; ``False``: yes, normally."""
        state = self.state
        if state == STATE_CLOSED:
            return False
        with self._lock:
            self._note_state()
            if self.state != STATE_HALF_OPEN:
                return False if self.state == STATE_CLOSED else None
            if self._probes_in_flight >= self.half_open_probes:
                return None
            self._probes_in_flight += 1
            return True

    def success(self, probing: bool) -> None:
        with self._lock:
            if self._state != STATE_CLOSED or self._failure_count:
                self.reset()
            self._note_state()
        self._release(probing)

    def failure(self, probing: bool, error: Exception | None = None) -> None:
        with self._lock:
            self._last_failure = error
            self._CircuitBreaker__call_failed()
            self._note_state()
        self._release(probing)

    def _release(self, probing: bool | None) -> None:
        if probing:
            with self._lock:
                self._probes_in_flight = max(0, self._probes_in_flight - 1)

    def retry_after(self) -> int:
        return max(1, int(self.open_remaining))

    def _note_state(self) -> None:
        state = self.state
        if state == self._reported_state:
            return
        previous, self._reported_state = self._reported_state, state
        self.changed_at = time.time()
        log = logger.warning if state == STATE_OPEN else logger.info
        log(
            "circuit breaker state changed",
            extra={
                "breaker": self.name,
                "service": self.service,
                "kind": self.kind,
                "from_state": previous,
                "to_state": state,
                "failures": self._failure_count,
            },
        )
        BREAKER_TRANSITIONS.labels(self.service, self.kind, state).inc()
        instance = self.name if self.kind == "instance" else ""
        BREAKER_STATE.labels(self.service, self.kind, instance).set(BREAKER_STATE_VALUES.get(state, 0))

    def describe(self) -> dict[str, Any]:
        state = self.state
        return {
            "state": state,
            "failures": self._failure_count,
            "open_remaining": max(0, self.open_remaining) if state == STATE_OPEN else 0,
            "changed_at": self.changed_at,
        }


# --------------------------------------------------------------------------------------------
# Retry budget
# --------------------------------------------------------------------------------------------
class RetryBudget:
    """Retries may add at most ``ratio`` of the first attempts (plus a small floor per second).

    Each first attempt deposits ``ratio`` tokens; each retry withdraws one. A trickle of
    ``min_per_second`` tokens keeps retries possible at very low traffic. The balance is capped
    so that a quiet period cannot save up a retry storm.
    """

    def __init__(self, *, ratio: float = 0.2, min_per_second: float = 2.0, max_balance: float = 20.0) -> None:
        self.ratio = ratio
        self.min_per_second = min_per_second
        self.max_balance = max_balance
        self._balance = max_balance
        self._updated = time.monotonic()
        self._lock = threading.Lock()

    def _refill(self, now: float) -> None:
        elapsed = now - self._updated
        self._updated = now
        self._balance = min(self.max_balance, self._balance + elapsed * self.min_per_second)

    def deposit(self) -> None:
        with self._lock:
            self._balance = min(self.max_balance, self._balance + self.ratio)

    def try_withdraw(self) -> bool:
        with self._lock:
            self._refill(time.monotonic())
            if self._balance >= 1.0:
                self._balance -= 1.0
                return True
            return False

    @property
    def balance(self) -> float:
        return self._balance


# --------------------------------------------------------------------------------------------
# Load balancing
# --------------------------------------------------------------------------------------------
class InFlight:
    """Requests outstanding per instance, and their recent latency, in this process."""

    EWMA_WEIGHT = 0.2  # weight of the newest sample in the moving average

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}
        self.totals: dict[str, int] = {}  # requests sent so far, for the admin view
        self.latency_ms: dict[str, float] = {}  # exponentially weighted moving average
        self.measured_at: dict[str, float] = {}
        self._lock = threading.Lock()

    def get(self, instance_id: str) -> int:
        return self._counts.get(instance_id, 0)

    def start(self, instance_id: str) -> None:
        with self._lock:
            self._counts[instance_id] = self._counts.get(instance_id, 0) + 1
            self.totals[instance_id] = self.totals.get(instance_id, 0) + 1

    def finish(self, instance_id: str, elapsed_ms: float | None = None) -> None:
        with self._lock:
            self._counts[instance_id] = self._counts.get(instance_id, 1) - 1
            if elapsed_ms is not None:
                self.measured_at[instance_id] = time.monotonic()
                previous = self.latency_ms.get(instance_id)
                self.latency_ms[instance_id] = (
                    elapsed_ms if previous is None else previous + self.EWMA_WEIGHT * (elapsed_ms - previous)
                )

    def recent_latency_ms(self, instance_id: str, now: float, half_life: float = 1.0) -> float:
        """The moving average, decaying towards 0 while the instance is not used: an instance
        that looked slow once is tried again after a while instead of being starved forever."""
        latency = self.latency_ms.get(instance_id)
        if latency is None:
            return 0.0
        age = now - self.measured_at.get(instance_id, now)
        return latency * 0.5 ** (age / half_life) if age > 0 else latency

    def snapshot(self) -> dict[str, int]:
        return dict(self._counts)


class RoundRobin:
    name = "round_robin"

    def __init__(self, in_flight: InFlight) -> None:
        self._counter = itertools.count()

    def order(self, instances: list[Instance]) -> list[Instance]:
        start = next(self._counter) % len(instances)
        return instances[start:] + instances[:start]


class LeastOutstanding(RoundRobin):
    """Fewest requests in flight first; among those, the clearly faster instance (recent latency
    in ``LATENCY_BUCKET_MS`` steps, so that equal instances tie); remaining ties round robin.

    The latency step matters when there is little concurrency: with one request at a time every
    instance has zero in flight, and plain least-outstanding degrades to round robin, sending half
    the traffic to a slow instance. An instance without a measurement yet (a new one) ranks first;
    an unused instance's latency halves every second, so a slow one is re-tried now and then.
    """

    name = "least_outstanding"
    LATENCY_BUCKET_MS = 2.0

    def __init__(self, in_flight: InFlight) -> None:
        super().__init__(in_flight)
        self._in_flight = in_flight

    def order(self, instances: list[Instance]) -> list[Instance]:
        rotated = super().order(instances)
        if len(rotated) == 1:
            return rotated
        in_flight = self._in_flight
        now = time.monotonic()
        bucket = self.LATENCY_BUCKET_MS
        return sorted(
            rotated,
            key=lambda instance: (
                in_flight.get(instance.instance_id),
                int(in_flight.recent_latency_ms(instance.instance_id, now) // bucket),
            ),
        )


BALANCERS = {"round_robin": RoundRobin, "least_outstanding": LeastOutstanding}


# --------------------------------------------------------------------------------------------
# The client
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ServiceResponse:
    status: int
    headers: Mapping[str, str]
    body: bytes
    instance_id: str

    def json(self) -> Any:
        return jsonlib.loads(self.body) if self.body else None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def parse(self, contract: type[BodyT], *, service: str) -> BodyT:
        """The body as its contract class (``bazaar_common.contracts.http``). An answer that does
        not parse is the other service failing (503), never a traceback in the caller."""
        from bazaar_common.contracts.http import MalformedBody

        try:
            return contract.parse(self.body)
        except MalformedBody as exc:
            logger.warning("unreadable answer", extra={"service": service, "errors": str(exc)[:500]})
            raise ServiceUnavailable(f"The {service} service answered with an unreadable document.") from exc


@dataclass(frozen=True)
class CallPolicy:
    """Timeouts and retry rules of one kind of call (the gateway has one per route)."""

    connect_timeout: float = 1.0
    read_timeout: float = 5.0  # the call's overall deadline for reading answers
    max_attempts: int = 3
    retry_idempotent: bool = True
    # An idempotent attempt that is not the last one may take this share of the deadline; a hung
    # instance then costs a retry on another instance, not the request.
    attempt_share: float = 0.5

    def timeout(self) -> urllib3.Timeout:
        return urllib3.Timeout(connect=self.connect_timeout, read=self.read_timeout)

    def attempt_timeout(self, remaining: float, *, last: bool) -> urllib3.Timeout:
        read = remaining if last else min(remaining, self.read_timeout * self.attempt_share)
        return urllib3.Timeout(connect=self.connect_timeout, read=max(read, 0.05))


class ServiceClient:
    """Discovery-aware, pooled, time-limited, breaker-guarded calls to other services."""

    def __init__(
        self,
        instances: Callable[[str], list[Instance]],
        *,
        connect_timeout: float = 1.0,
        read_timeout: float = 5.0,
        max_attempts: int = 3,
        pool_maxsize: int = 32,
        auth_header: Callable[[], str | None] | None = None,
        healthy: Callable[[list[Instance]], list[Instance]] | None = None,
        confirmed_healthy: Callable[[list[Instance]], list[Instance]] | None = None,
        balancer: str = "least_outstanding",
        retry_budget: RetryBudget | None = None,
        instance_failure_threshold: int = 5,
        instance_recovery_timeout: float = 5.0,
        service_failure_threshold: int = 10,
        service_recovery_timeout: float = 5.0,
        half_open_probes: int = 1,
    ) -> None:
        self._instances = instances
        self._healthy = healthy
        self._confirmed_healthy = confirmed_healthy
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.max_attempts = max(1, min(max_attempts, 3))
        self.default_policy = CallPolicy(connect_timeout, read_timeout, self.max_attempts)
        self._auth_header = auth_header
        self._pool_maxsize = pool_maxsize
        self._host_pools: dict[str, urllib3.HTTPConnectionPool] = {}
        self._host_pools_lock = threading.Lock()
        self._seen_instances: dict[str, Instance] = {}
        self.in_flight = InFlight()
        self.balancer = BALANCERS[balancer](self.in_flight)
        self.retry_budget = retry_budget or RetryBudget()
        self._breakers: dict[str, ResilientBreaker] = {}
        self._service_breakers: dict[str, ResilientBreaker] = {}
        self._breakers_lock = threading.Lock()
        self._instance_breaker_args: dict[str, Any] = {
            "failure_threshold": instance_failure_threshold,
            "recovery_timeout": instance_recovery_timeout,
            "half_open_probes": half_open_probes,
        }
        self._service_breaker_args: dict[str, Any] = {
            "failure_threshold": service_failure_threshold,
            "recovery_timeout": service_recovery_timeout,
            "half_open_probes": half_open_probes,
        }

    # ---- breakers -------------------------------------------------------------------------
    def breaker_for(self, instance: Instance) -> ResilientBreaker:
        breaker = self._breakers.get(instance.instance_id)
        if breaker is None:
            with self._breakers_lock:
                breaker = self._breakers.get(instance.instance_id)
                if breaker is None:
                    breaker = ResilientBreaker(
                        instance.instance_id,
                        service=instance.service,
                        kind="instance",
                        **self._instance_breaker_args,
                    )
                    self._breakers[instance.instance_id] = breaker
        return breaker

    def service_breaker(self, service: str) -> ResilientBreaker:
        breaker = self._service_breakers.get(service)
        if breaker is None:
            with self._breakers_lock:
                breaker = self._service_breakers.get(service)
                if breaker is None:
                    breaker = ResilientBreaker(
                        f"service:{service}",
                        service=service,
                        kind="service",
                        **self._service_breaker_args,
                    )
                    self._service_breakers[service] = breaker
        return breaker

    def breaker_states(self) -> dict[str, str]:
        return {name: breaker.state for name, breaker in self._breakers.items()}

    def describe_instance(self, instance: Instance) -> dict[str, Any]:
        breaker = self._breakers.get(instance.instance_id)
        return {
            "in_flight": self.in_flight.get(instance.instance_id),
            "requests": self.in_flight.totals.get(instance.instance_id, 0),
            "latency_ms": round(self.in_flight.latency_ms.get(instance.instance_id, 0.0), 2),
            "circuit": breaker.describe() if breaker else {"state": STATE_CLOSED, "failures": 0},
        }

    def is_failing(self, service: str) -> bool:
        """The service's breaker, or every instance's, is open or probing: it fails for everyone,
        not only for one caller (the gateway then answers 503 as for any outage)."""
        service_breaker = self._service_breakers.get(service)
        if service_breaker is not None and service_breaker.state != STATE_CLOSED:
            return True
        instances = self._instances(service)
        breakers = self._breakers
        return bool(instances) and all(
            (breaker := breakers.get(instance.instance_id)) is not None and breaker.state != STATE_CLOSED
            for instance in instances
        )

    def describe_service(self, service: str) -> dict[str, Any]:
        breaker = self._service_breakers.get(service)
        return breaker.describe() if breaker else {"state": STATE_CLOSED, "failures": 0}

    # ---- public API -----------------------------------------------------------------------
    def request(
        self,
        service: str,
        method: str,
        path: str,
        *,
        json: Any = None,
        query: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        read_timeout: float | None = None,
    ) -> ServiceResponse:
        """A JSON call to ``service``. A 5xx answer (after retries) raises ServiceUnavailable."""
        method = method.upper()
        url_path = path + (f"?{urlencode(query, doseq=True)}" if query else "")
        body = jsonlib.dumps(json).encode() if json is not None else None
        send_headers = self._headers(headers, has_body=body is not None)
        policy = self.default_policy
        if read_timeout is not None:
            policy = CallPolicy(self.connect_timeout, read_timeout, self.max_attempts)
        response = self.send(service, method, url_path, body=body, headers=send_headers, policy=policy)
        if counts_as_failure(response.status):  # for the caller a dependency's 503 is a failure too
            raise ServiceUnavailable(f"The {service} service failed ({response.status}).", retry_after=5)
        return response

    def send(
        self,
        service: str,
        method: str,
        url_path: str,
        *,
        body: bytes | None,
        headers: Mapping[str, str],
        policy: CallPolicy | None = None,
        decode_content: bool = True,
    ) -> ServiceResponse:
        """Send raw bytes; return the upstream's answer, whatever its status (the gateway's path).

        Raises ServiceUnavailable when nothing could be reached, GatewayTimeout on a read timeout.
        """
        policy = policy or self.default_policy
        service_breaker = self.service_breaker(service)
        service_probe = service_breaker.acquire()
        if service_probe is None:
            raise ServiceUnavailable(
                f"The {service} service is failing; not calling it for a while.",
                retry_after=service_breaker.retry_after(),
            )
        try:
            response = self._attempts(
                service, method, url_path, body, headers, policy, decode_content, service_probe=bool(service_probe)
            )
        except _NoInstance as exc:
            service_breaker._release(service_probe)
            if exc.retry_after is not None:
                raise ServiceUnavailable(
                    f"Every instance of the {service} service is failing (circuit open).",
                    retry_after=exc.retry_after,
                ) from None
            raise ServiceUnavailable(f"No healthy instance of the {service} service.", retry_after=2) from None
        except ServiceUnavailable as exc:
            service_breaker.failure(service_probe, exc)
            raise
        except BaseException:
            service_breaker._release(service_probe)
            raise
        if own_failure(response.status, response.headers):
            service_breaker.failure(service_probe, UpstreamFailure(str(response.status)))
        else:
            service_breaker.success(service_probe)
        return response

    # ---- internals ------------------------------------------------------------------------
    def _candidates(self, service: str, *, service_probe: bool = False) -> tuple[list[Instance], set[str]]:
        """Instances in the order to try them (healthy ones, balanced, open breakers left out),
        and the ids the active health check confirmed healthy.

        Half-open probes (the service's, or an instance's) go only to confirmed instances when
        there are any: one slow instance must not fail the probe while others are up.
        """
        found = self._instances(service)
        if not found:
            return [], set()
        confirmed = {i.instance_id for i in self._confirmed_healthy(found)} if self._confirmed_healthy else set()
        if self._healthy is not None:
            found = self._healthy(found)
        ordered = self.balancer.order(found)
        breakers = self._breakers
        candidates = [
            instance
            for instance in ordered
            if (breaker := breakers.get(instance.instance_id)) is None or breaker.state != STATE_OPEN
        ]
        if service_probe and confirmed:
            closed = [
                instance
                for instance in candidates
                if instance.instance_id in confirmed
                and ((breaker := breakers.get(instance.instance_id)) is None or breaker.state == STATE_CLOSED)
            ]
            candidates = closed or candidates
        return candidates, confirmed

    def _attempts(
        self,
        service: str,
        method: str,
        url_path: str,
        body: bytes | None,
        headers: Mapping[str, str],
        policy: CallPolicy,
        decode_content: bool,
        *,
        service_probe: bool = False,
    ) -> ServiceResponse:
        candidates, confirmed = self._candidates(service, service_probe=service_probe)
        if not candidates:
            raise _NoInstance(self._open_retry_after(service))
        idempotent = method in IDEMPOTENT_METHODS and policy.retry_idempotent
        deadline = time.monotonic() + policy.read_timeout
        self.retry_budget.deposit()
        last_error: Exception | None = None
        last_response: ServiceResponse | None = None
        timed_out: _ReadTimedOut | None = None
        attempts = 0
        for index, instance in enumerate(candidates):
            if attempts >= policy.max_attempts:
                break
            remaining = deadline - time.monotonic()
            if timed_out is not None and remaining < 0.05:
                break  # the call's deadline is spent
            breaker = self.breaker_for(instance)
            probing = breaker.acquire()
            if probing is None:
                continue  # open, or its half-open probe slots are taken: try the next one
            if probing and confirmed and instance.instance_id not in confirmed:
                breaker._release(probing)
                continue  # no probe to an instance the active check does not vouch for
            if attempts > 0:
                if not self.retry_budget.try_withdraw():
                    breaker._release(probing)
                    RETRY_BUDGET_EXHAUSTED.labels(service).inc()
                    break
                UPSTREAM_RETRIES.labels(service).inc()
            attempts += 1
            last = not idempotent or attempts >= policy.max_attempts or index == len(candidates) - 1
            timeout = policy.attempt_timeout(remaining, last=last)
            try:
                response = self._send(instance, method, url_path, body, headers, timeout, decode_content)
            except _ReadTimedOut as exc:
                UPSTREAM_ATTEMPTS.labels(service, "timeout").inc()
                breaker.failure(probing, exc)
                if last:
                    raise self._timeout(service, policy) from exc
                timed_out = exc  # a hung instance: the read goes to another one
                self._log_attempt(service, instance, attempts, "read timeout")
                continue
            except _ConnectFailed as exc:
                UPSTREAM_ATTEMPTS.labels(service, "connect_failed").inc()
                breaker.failure(probing, exc)
                last_error = exc  # nothing was sent: safe for any method
            except _ConnectionBroken as exc:
                UPSTREAM_ATTEMPTS.labels(service, "broken").inc()
                breaker.failure(probing, exc)
                last_error = exc
                if not idempotent:
                    raise ServiceUnavailable(f"The connection to the {service} service broke.", retry_after=2) from exc
            else:
                failed = counts_as_failure(response.status)
                UPSTREAM_ATTEMPTS.labels(service, "error_status" if failed else "ok").inc()
                if failed:
                    if own_failure(response.status, response.headers):
                        breaker.failure(probing, UpstreamFailure(str(response.status)))
                    else:
                        breaker.success(probing)  # it answered; its dependency did not
                    last_response = response
                    if idempotent and response.status in RETRYABLE_STATUSES:
                        last_error = None
                        self._log_attempt(service, instance, attempts, f"status {response.status}")
                        continue
                    return response
                breaker.success(probing)
                return response
            self._log_attempt(service, instance, attempts, str(last_error))
        if last_response is not None:
            return last_response  # the upstream's own 5xx answer, passed on as it is
        if timed_out is not None:
            raise self._timeout(service, policy) from timed_out
        if attempts == 0:
            raise _NoInstance(self._open_retry_after(service))
        raise ServiceUnavailable(f"The {service} service is unavailable.", retry_after=2)

    @staticmethod
    def _timeout(service: str, policy: CallPolicy) -> GatewayTimeout:
        return GatewayTimeout(f"The {service} service did not answer within {policy.read_timeout:g} s.", retry_after=1)

    def _open_retry_after(self, service: str) -> int | None:
        """When instances exist but no breaker is closed: seconds until one may be tried again."""
        breakers = [
            breaker
            for instance in self._instances(service)
            if (breaker := self._breakers.get(instance.instance_id)) is not None
        ]
        if not breakers or any(breaker.state == STATE_CLOSED for breaker in breakers):
            return None
        return min(breaker.retry_after() for breaker in breakers)

    @staticmethod
    def _log_attempt(service: str, instance: Instance, attempt: int, error: str) -> None:
        logger.warning(
            "upstream attempt failed",
            extra={
                "service": service,
                "instance": instance.instance_id,
                "attempt": attempt,
                "error": error,
            },
        )

    def _headers(self, headers: Mapping[str, str] | None, *, has_body: bool) -> dict[str, str]:
        result = {"Accept": "application/json"}
        if has_body:
            result["Content-Type"] = "application/json"
        request_id = current_request_id.get()
        if request_id:
            result[REQUEST_ID_HEADER] = request_id
        if self._auth_header is not None:
            value = self._auth_header()
            if value:
                result["Authorization"] = value
        result.update(headers or {})
        return result

    def _send(
        self,
        instance: Instance,
        method: str,
        url_path: str,
        body: bytes | None,
        headers: Mapping[str, str],
        timeout: urllib3.Timeout,
        decode_content: bool = True,
    ) -> ServiceResponse:
        instance_id = instance.instance_id
        self._seen_instances[instance.base_url] = instance
        self.in_flight.start(instance_id)
        started = time.perf_counter()
        elapsed_ms: float | None = None
        # The client span is the urllib3 instrumentation's (see observability); it reads the
        # instance tried from here to name the span after the service.
        attempt = _attempt_instance.set(instance) if tracing_enabled() else None
        try:
            pool = self._host_pools.get(instance.base_url) or self._new_pool(instance.base_url)
            response = pool.urlopen(
                method,
                url_path,
                body=body,
                headers=headers,
                timeout=timeout,
                redirect=False,
                retries=False,
                preload_content=True,
                decode_content=decode_content,
            )
        except (ConnectTimeoutError, NewConnectionError) as exc:
            raise _ConnectFailed(str(exc)) from exc
        except ReadTimeoutError as exc:
            # A sample as slow as the timeout: the balancer puts a hung instance last.
            elapsed_ms = (time.perf_counter() - started) * 1000
            raise _ReadTimedOut(str(exc)) from exc
        except (ProtocolError, HTTPError, OSError) as exc:
            raise _ConnectionBroken(str(exc)) from exc
        else:
            elapsed_ms = (time.perf_counter() - started) * 1000
        finally:
            self.in_flight.finish(instance_id, elapsed_ms)
            if attempt is not None:
                _attempt_instance.reset(attempt)
        return ServiceResponse(
            status=response.status,
            headers=response.headers,
            body=response.data,
            instance_id=instance_id,
        )

    def _new_pool(self, base_url: str) -> urllib3.HTTPConnectionPool:
        """One keep-alive pool per instance, looked up by base URL (no URL parsing per call)."""
        with self._host_pools_lock:
            pool = self._host_pools.get(base_url)
            if pool is None:
                if len(self._host_pools) >= MAX_HOST_POOLS:
                    # Instances come and go (new ports, new pods): forget pools of the past.
                    known = {
                        instance.base_url
                        for service in {i.service for i in self._seen_instances.values()}
                        for instance in self._instances(service)
                    }
                    for url in [url for url in self._host_pools if url not in known]:
                        self._host_pools.pop(url).close()
                        self._seen_instances.pop(url, None)
                pool = urllib3.connection_from_url(base_url, maxsize=self._pool_maxsize, block=False, retries=False)
                self._host_pools[base_url] = pool
            return pool

    def close(self) -> None:
        with self._host_pools_lock:
            for pool in self._host_pools.values():
                pool.close()
            self._host_pools.clear()


def name_attempt_span(span: Any, pool: Any, request_info: Any) -> None:
    """The urllib3 instrumentation's request hook: a span of one attempt of this client is named
    after the service (``GET catalog``) and says which instance was tried."""
    instance = _attempt_instance.get()
    if instance is None or not span.is_recording():
        return
    span.update_name(f"{request_info.method} {instance.service}")
    span.set_attribute("peer.service", instance.service)
    span.set_attribute("bazaar.instance", instance.instance_id)


class _NoInstance(Exception):
    def __init__(self, retry_after: int | None = None) -> None:
        super().__init__()
        self.retry_after = retry_after


__all__ = [
    "STATE_CLOSED",
    "STATE_HALF_OPEN",
    "STATE_OPEN",
    "CallPolicy",
    "LeastOutstanding",
    "ResilientBreaker",
    "RetryBudget",
    "RoundRobin",
    "ServiceClient",
    "ServiceResponse",
    "UpstreamFailure",
    "name_attempt_span",
    "service_client",
]

_default_client: ServiceClient | None = None
_default_lock = threading.Lock()


def service_client() -> ServiceClient:
    """The process-wide client for service-to-service calls, authenticated as this service."""
    global _default_client
    if _default_client is None:
        with _default_lock:
            if _default_client is None:
                from bazaar_common.auth.service_tokens import service_authorization_header
                from bazaar_common.discovery import get_registry, health_confirmed, health_filter

                _default_client = ServiceClient(
                    get_registry().instances,
                    auth_header=service_authorization_header,
                    healthy=health_filter(),
                    confirmed_healthy=health_confirmed(),
                )
    return _default_client
