"""The resilient HTTP client for calls between services (and the gateway's upstream calls).

Every call: an instance found through discovery, a pooled keep-alive connection, connect and read
timeouts, a circuit breaker per instance, and a retry on another instance only when that is safe
(an idempotent method, or a connection that was refused before anything was sent).
Faults surface as :class:`~bazaar_common.errors.ServiceUnavailable` (503) or
:class:`~bazaar_common.errors.GatewayTimeout` (504), both carrying ``retry_after``.
"""

from __future__ import annotations

import itertools
import json as jsonlib
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import urllib3
from circuitbreaker import STATE_CLOSED, STATE_HALF_OPEN, STATE_OPEN, CircuitBreaker
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
)

from bazaar_common.discovery import Instance
from bazaar_common.errors import GatewayTimeout, ServiceUnavailable
from bazaar_common.request_id import REQUEST_ID_HEADER, current_request_id

logger = logging.getLogger(__name__)
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})


class UpstreamFailure(Exception):
    """An upstream answered with a server error or could not be reached (counts for breakers)."""


class _InstanceBreaker(CircuitBreaker):
    FAILURE_THRESHOLD = 5
    RECOVERY_TIMEOUT = 5
    EXPECTED_EXCEPTION = UpstreamFailure


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
    ) -> None:
        self._instances = instances
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.max_attempts = max_attempts
        self._auth_header = auth_header
        self._pool = urllib3.PoolManager(num_pools=64, maxsize=pool_maxsize, retries=False)
        self._breakers: dict[str, _InstanceBreaker] = {}
        self._breakers_lock = threading.Lock()
        self._counter = itertools.count()

    def breaker_for(self, instance: Instance) -> _InstanceBreaker:
        breaker = self._breakers.get(instance.instance_id)
        if breaker is None:
            with self._breakers_lock:
                breaker = self._breakers.setdefault(
                    instance.instance_id, _InstanceBreaker(name=instance.instance_id)
                )
        return breaker

    def breaker_states(self) -> dict[str, str]:
        return {name: breaker.state for name, breaker in self._breakers.items()}

    def _candidates(self, service: str) -> list[Instance]:
        """Instances to try in order: round robin, instances with an open breaker left out."""
        found = self._instances(service)
        if not found:
            return []
        start = next(self._counter) % len(found)
        rotated = found[start:] + found[:start]
        return [i for i in rotated if self.breaker_for(i).state != STATE_OPEN]

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
        method = method.upper()
        url_path = path + (f"?{urlencode(query, doseq=True)}" if query else "")
        body = jsonlib.dumps(json).encode() if json is not None else None
        send_headers = self._headers(headers, has_body=body is not None)
        timeout = urllib3.Timeout(connect=self.connect_timeout, read=read_timeout or self.read_timeout)
        candidates = self._candidates(service)
        if not candidates:
            raise ServiceUnavailable(f"No healthy instance of the {service} service.", retry_after=5)
        last_error: Exception | None = None
        for attempt, instance in enumerate(candidates[: self.max_attempts]):
            breaker = self.breaker_for(instance)
            try:
                return breaker.call(
                    self._send, instance, method, url_path, body, send_headers, timeout
                )
            except _ConnectFailed as exc:
                last_error = exc  # nothing was sent: safe to try another instance
            except _ReadTimedOut as exc:
                if method not in IDEMPOTENT_METHODS:
                    raise GatewayTimeout(f"The {service} service did not answer in time.") from exc
                last_error = exc
            except UpstreamFailure as exc:
                if method not in IDEMPOTENT_METHODS:
                    raise ServiceUnavailable(f"The {service} service failed.", retry_after=5) from exc
                last_error = exc
            except Exception as exc:  # circuitbreaker.CircuitBreakerError: opened meanwhile
                if exc.__class__.__name__ != "CircuitBreakerError":
                    raise
                last_error = exc
            logger.warning(
                "upstream attempt failed",
                extra={"service": service, "instance": instance.instance_id, "attempt": attempt + 1,
                       "error": str(last_error)},
            )
        if isinstance(last_error, _ReadTimedOut):
            raise GatewayTimeout(f"The {service} service did not answer in time.")
        raise ServiceUnavailable(f"The {service} service is unavailable.", retry_after=5)

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
        headers: dict[str, str],
        timeout: urllib3.Timeout,
    ) -> ServiceResponse:
        try:
            response = self._pool.request(
                method,
                instance.base_url + url_path,
                body=body,
                headers=headers,
                timeout=timeout,
                redirect=False,
                preload_content=True,
            )
        except (ConnectTimeoutError, NewConnectionError) as exc:
            raise _ConnectFailed(str(exc)) from exc
        except ReadTimeoutError as exc:
            raise _ReadTimedOut(str(exc)) from exc
        except (ProtocolError, HTTPError) as exc:
            raise UpstreamFailure(str(exc)) from exc
        if response.status >= 500:
            raise UpstreamFailure(f"{instance.base_url} answered {response.status}")
        return ServiceResponse(
            status=response.status,
            headers=dict(response.headers),
            body=response.data,
            instance_id=instance.instance_id,
        )


class _ConnectFailed(UpstreamFailure):
    pass


class _ReadTimedOut(UpstreamFailure):
    pass


__all__ = [
    "STATE_CLOSED",
    "STATE_HALF_OPEN",
    "STATE_OPEN",
    "ServiceClient",
    "ServiceResponse",
    "UpstreamFailure",
]

_default_client: ServiceClient | None = None


def service_client() -> ServiceClient:
    """The process-wide client for service-to-service calls, authenticated as this service."""
    global _default_client
    if _default_client is None:
        from bazaar_common.auth.service_tokens import service_authorization_header
        from bazaar_common.discovery import get_registry

        _default_client = ServiceClient(
            get_registry().instances, auth_header=service_authorization_header
        )
    return _default_client
