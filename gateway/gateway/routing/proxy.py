"""The gateway's hot path: a plain WSGI application in front of Django.

Requests whose path matches a route (``routes.py``) are proxied here without entering Django's
request machinery (no middleware, no sessions, no database); everything else — ``/healthz``,
``/readyz``, ``/admin/``, ``/api/docs``, ``/api/v1/gateway/…`` — goes to Django.
``/internal/`` is refused here (404) before anything else.

Per proxied request, in order: body size limit (413), CORS preflight, the route's token check
(401/403), the rate limit (429), then the upstream call through the shared
:class:`~bazaar_common.http.ServiceClient` (discovery, health, balancing, breakers, retries,
timeouts). Faults answer as RFC 9457 problems (503/504 with ``Retry-After``), never HTML.

Each proxied request is counted and timed (:mod:`gateway.routing.metrics`) and, with tracing on,
is a server span of its own. ``/metrics`` is not served here: metrics have their own port.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from django.conf import settings

from bazaar_common.auth.tokens import InvalidToken, Principal
from bazaar_common.errors import (
    DISALLOWED_HOST_DETAIL,
    DISALLOWED_HOST_ERRORS,
    PROBLEM_CONTENT_TYPE,
    GatewayTimeout,
    ServiceUnavailable,
    problem_body,
)
from bazaar_common.http import ServiceClient, own_failure
from bazaar_common.observability import tag_span_with_request_id, tracing_enabled
from bazaar_common.request_id import clean_request_id, current_request_id
from gateway.routing import routes as routing
from gateway.routing.caller_guard import CallerFailureGuard
from gateway.routing.edge import (
    Cors,
    HostCheck,
    TokenVerifier,
    bearer_token,
    client_address,
    is_stripped,
    valid_traceparent,
)
from gateway.routing.metrics import record_rate_limited, record_request
from gateway.routing.ratelimit import RateLimiter

logger = logging.getLogger("gateway.proxy")
access_log = logging.getLogger("bazaar.access")

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
_STATUS_LINES = {status.value: f"{status.value} {status.phrase}" for status in HTTPStatus}
_RESPONSE_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
        "proxy-authenticate",
        "proxy-connection",
        "server",
        "date",
    }
)


def status_line(status: int) -> str:
    return _STATUS_LINES.get(status) or f"{status} Unknown"


@dataclass
class GatewayConfig:
    max_body_bytes: int = 1024 * 1024
    trusted_proxies: int = 0
    hsts_seconds: int = 0
    access_log: bool = True
    # Requests of the ``login`` class (sign-in, sign-up, password reset: an Argon2 hash each) in
    # flight per gateway process; the excess waits ``login_queue_seconds`` at most, then is shed
    # with 503 + Retry-After instead of queueing in the auth service into timeouts.
    login_concurrency: int = 4
    login_queue_seconds: float = 0.5
    # Upstream failures one caller may cause per service and window (routing/caller_guard.py).
    caller_max_failures: int = 3
    caller_failure_window_seconds: float = 10.0
    # Hosts served, on every path (see HostCheck); None: Django's ALLOWED_HOSTS and DEBUG.
    allowed_hosts: tuple[str, ...] | None = None


SECURITY_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
)


class GatewayApplication:
    """WSGI: proxy the routed API paths, hand the rest to Django."""

    def __init__(
        self,
        django_app: WSGIApp,
        *,
        client: ServiceClient,
        limiter: RateLimiter | None,
        cors: Cors,
        config: GatewayConfig,
        verifier: TokenVerifier | None = None,
        route_table: tuple[routing.Route, ...] = routing.ACTIVE_ROUTES,
    ) -> None:
        self.django_app = django_app
        self.client = client
        self.limiter = limiter
        self.cors = cors
        self.config = config
        self.verifier = verifier or TokenVerifier()
        self.host_check = (
            HostCheck(config.allowed_hosts)
            if config.allowed_hosts is not None
            else HostCheck(settings.ALLOWED_HOSTS, debug=settings.DEBUG)
        )
        self.routes = route_table
        security = list(SECURITY_HEADERS)
        if config.hsts_seconds > 0:
            security.append(("Strict-Transport-Security", f"max-age={config.hsts_seconds}; includeSubDomains"))
        self.security_headers = security
        self.failure_guard = CallerFailureGuard(
            max_failures=config.caller_max_failures, window_seconds=config.caller_failure_window_seconds
        )
        self._security_names = frozenset(name.lower() for name, _ in security)
        self._in_flight = {"login": threading.BoundedSemaphore(max(1, config.login_concurrency))}
        # Decided once: without tracing the hot path pays nothing for it.
        self._traced = tracing_enabled()

    # ---------------------------------------------------------------------------------------
    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO") or "/"
        if not self.host_check.allows(environ):
            # Before anything else, on every path: a Host this gateway does not serve is never
            # proxied (the upstream would build links and redirects for it).
            return self._problem(
                start_response, environ, 400, DISALLOWED_HOST_DETAIL, request_id=None,
                errors=list(DISALLOWED_HOST_ERRORS),
            )  # fmt: skip
        if routing.is_blocked(path):
            return self._problem(start_response, environ, 404, "Not found.", request_id=None)
        route = routing.match(environ["REQUEST_METHOD"], path, self.routes)
        if route is None:
            return self.django_app(environ, self._with_security_headers(start_response))
        if self._traced:
            return self._traced_proxy(route, path, environ, start_response)
        return self.proxy(route, path, environ, start_response)

    def _traced_proxy(
        self, route: routing.Route, path: str, environ: dict[str, Any], start_response: StartResponse
    ) -> Iterable[bytes]:
        """The gateway's own server span, continuing the caller's ``traceparent`` if it sent one;
        each upstream attempt is a child client span (urllib3 instrumentation)."""
        from opentelemetry import propagate, trace
        from opentelemetry.instrumentation.wsgi import wsgi_getter

        method = environ["REQUEST_METHOD"]
        tracer = trace.get_tracer("bazaar.gateway")
        with tracer.start_as_current_span(
            f"{method} {route.prefix}",
            context=propagate.extract(environ, getter=wsgi_getter),
            kind=trace.SpanKind.SERVER,
            attributes={"http.request.method": method, "http.route": route.prefix, "url.path": path,
                        "bazaar.upstream.service": route.service},
        ) as span:  # fmt: skip
            captured: list[str] = []

            def capture(status: str, headers: list[tuple[str, str]], *args: Any) -> Any:
                captured.append(status)
                return start_response(status, headers, *args)

            body = self.proxy(route, path, environ, capture)
            code = int(captured[0].split(" ", 1)[0]) if captured else 500
            span.set_attribute("http.response.status_code", code)
            if code >= 500:
                span.set_status(trace.StatusCode.ERROR)
            return body

    def proxy(
        self, route: routing.Route, path: str, environ: dict[str, Any], start_response: StartResponse
    ) -> Iterable[bytes]:
        started = time.perf_counter()
        method = environ["REQUEST_METHOD"]
        request_id = clean_request_id(environ.get("HTTP_X_REQUEST_ID"))
        token = current_request_id.set(request_id)
        if self._traced:
            tag_span_with_request_id(request_id)
        status = 500
        try:
            status, headers, body = self._handle(route, path, method, environ, request_id)
            start_response(status_line(status), headers)
            return [body]
        finally:
            elapsed = time.perf_counter() - started
            record_request(route.prefix, route.service, method, status, elapsed)
            if self.config.access_log:
                access_log.info(
                    "request",
                    extra={
                        "method": method,
                        "path": path,
                        "status": status,
                        "upstream_service": route.service,
                        "duration_ms": round(elapsed * 1000, 2),
                    },
                )
            current_request_id.reset(token)

    def _handle(
        self,
        route: routing.Route,
        path: str,
        method: str,
        environ: dict[str, Any],
        request_id: str,
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        origin = environ.get("HTTP_ORIGIN")
        cors_headers: list[tuple[str, str]] = []
        if origin is not None:
            if method == "OPTIONS" and "HTTP_ACCESS_CONTROL_REQUEST_METHOD" in environ:
                return self._preflight(origin, request_id)
            if self.cors.allowed(origin):
                cors_headers = self.cors.response_headers(origin)

        # 1. Body size, before reading anything.
        body, problem = self._read_body(environ)
        if problem is not None:
            return self._problem_tuple(*problem, request_id=request_id, extra_headers=cors_headers)

        # 2. Who is calling.
        principal: Principal | None = None
        token = bearer_token(environ.get("HTTP_AUTHORIZATION"))
        if token is not None:
            try:
                principal = self.verifier.verify(token) if token else None
                if principal is None:
                    raise InvalidToken("Authorization header must be 'Bearer <token>'.")
            except InvalidToken as exc:
                if route.auth:
                    return self._unauthorized(str(exc), request_id, cors_headers)
                principal = None  # public route: the service decides what a bad token means
        if route.auth:
            if principal is None:
                return self._unauthorized("Authentication credentials were not provided.", request_id, cors_headers)
            if route.roles and not (principal.roles & route.roles):
                return self._problem_tuple(
                    403,
                    "Your role does not allow this operation.",
                    request_id=request_id,
                    extra_headers=cors_headers,
                )

        # 3. Rate limit.
        client_ip = client_address(
            environ.get("REMOTE_ADDR", ""), environ.get("HTTP_X_FORWARDED_FOR"), self.config.trusted_proxies
        )
        limit_headers: list[tuple[str, str]] = []
        if self.limiter is not None:
            class_name = route.rate_class or ("user" if principal is not None else "anonymous")
            subject = f"user:{principal.id}" if principal is not None and class_name != "login" else f"ip:{client_ip}"
            decision = self.limiter.check(class_name, subject)
            if decision is not None:
                limit_headers = decision.headers()
                if not decision.allowed:
                    record_rate_limited(class_name)
                    return self._problem_tuple(
                        429,
                        "Too many requests; slow down.",
                        request_id=request_id,
                        retry_after=decision.reset_seconds,
                        extra_headers=cors_headers + limit_headers,
                    )

        # 4. A caller whose requests keep failing this service is refused here, before they can
        #    add up to a breaker that would refuse everybody (routing/caller_guard.py).
        caller = f"user:{principal.id}" if principal is not None else f"ip:{client_ip}"
        wait = self.failure_guard.retry_after(route.service, caller)
        if wait is not None and not self.client.is_failing(route.service):
            return self._problem_tuple(
                429,
                f"Your recent requests to the {route.service} service failed; wait before sending more.",
                request_id=request_id,
                retry_after=max(1, int(wait + 0.999)),
                extra_headers=cors_headers + limit_headers,
            )

        # 5. Concurrency: hashing routes are shed when the auth service is saturated.
        gate = self._in_flight.get(route.rate_class or "")
        if gate is not None:
            if not gate.acquire(timeout=self.config.login_queue_seconds):
                return self._problem_tuple(
                    503,
                    "Too many sign-ins in progress; retry shortly.",
                    request_id=request_id,
                    retry_after=1,
                    extra_headers=cors_headers + limit_headers,
                )
            try:
                return self._upstream(
                    route, path, method, environ, request_id, body, client_ip, caller, cors_headers, limit_headers
                )
            finally:
                gate.release()
        return self._upstream(
            route, path, method, environ, request_id, body, client_ip, caller, cors_headers, limit_headers
        )

    def _upstream(
        self,
        route: routing.Route,
        path: str,
        method: str,
        environ: dict[str, Any],
        request_id: str,
        body: bytes | None,
        client_ip: str,
        caller: str,
        cors_headers: list[tuple[str, str]],
        limit_headers: list[tuple[str, str]],
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        upstream_headers = self._upstream_headers(environ, request_id, client_ip)
        query = environ.get("QUERY_STRING")
        url_path = _quote_path(path) + (f"?{query}" if query else "")
        try:
            response = self.client.send(
                route.service,
                method,
                url_path,
                body=body,
                headers=upstream_headers,
                policy=route.policy,
                decode_content=False,
            )
        except GatewayTimeout as exc:
            self.failure_guard.record_failure(route.service, caller)
            return self._problem_tuple(
                504,
                str(exc.detail),
                request_id=request_id,
                retry_after=exc.retry_after,
                extra_headers=cors_headers + limit_headers,
            )
        except ServiceUnavailable as exc:
            return self._problem_tuple(
                503,
                str(exc.detail),
                request_id=request_id,
                retry_after=exc.retry_after,
                extra_headers=cors_headers + limit_headers,
            )
        if own_failure(response.status, response.headers):
            self.failure_guard.record_failure(route.service, caller)
        headers = self._response_headers(response.headers)
        headers.append(("X-Request-ID", request_id))
        headers.extend(cors_headers)
        headers.extend(limit_headers)
        return response.status, headers, response.body

    # ---------------------------------------------------------------------------------------
    def _read_body(self, environ: dict[str, Any]) -> tuple[bytes | None, tuple[int, str] | None]:
        limit = self.config.max_body_bytes
        raw_length = environ.get("CONTENT_LENGTH")
        stream = environ.get("wsgi.input")
        if raw_length:
            try:
                length = int(raw_length)
            except ValueError:
                return None, (400, "Content-Length is not a number.")
            if length < 0:
                return None, (400, "Content-Length is negative.")
            if length > limit:
                return None, (413, f"The request body is larger than {limit} bytes.")
            if length == 0:
                return None, None
            if stream is None:  # a server that gives no input stream: the body never arrived
                return None, (400, "The request body could not be read.")
            return stream.read(length), None
        if environ.get("HTTP_TRANSFER_ENCODING", "").lower() == "chunked" and stream is not None:
            data = stream.read(limit + 1)
            if len(data) > limit:
                return None, (413, f"The request body is larger than {limit} bytes.")
            return data or None, None
        return None, None

    def _upstream_headers(self, environ: dict[str, Any], request_id: str, client_ip: str) -> dict[str, str]:
        headers: dict[str, str] = {}
        for key, value in environ.items():
            if key.startswith("HTTP_"):
                name = key[5:].replace("_", "-").lower()
                if is_stripped(name) or name in ("x-request-id", "traceparent", "tracestate", "host"):
                    continue
                headers[name] = value
        content_type = environ.get("CONTENT_TYPE")
        if content_type:
            headers["content-type"] = content_type
        connection = environ.get("HTTP_CONNECTION")
        if connection:  # headers named in Connection are hop-by-hop too
            for name in connection.split(","):
                headers.pop(name.strip().lower(), None)
        traceparent = environ.get("HTTP_TRACEPARENT")
        if traceparent is not None and valid_traceparent(traceparent):
            headers["traceparent"] = traceparent
            tracestate = environ.get("HTTP_TRACESTATE")
            if tracestate:
                headers["tracestate"] = tracestate
        headers["x-request-id"] = request_id
        headers["x-forwarded-for"] = client_ip
        headers["x-forwarded-proto"] = environ.get("wsgi.url_scheme", "http")
        host = environ.get("HTTP_HOST")
        if host:
            headers["x-forwarded-host"] = host
        return headers

    def _with_security_headers(self, start_response: StartResponse) -> StartResponse:
        """The gateway's own Django answers (its 404s, health, docs, admin) carry the security
        headers too. HTML pages (the admin, the API docs) keep their own scripts and styles, so
        they get every header but the API's ``default-src 'none'`` policy."""

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            present = {name.lower() for name, _ in headers}
            html = any(name.lower() == "content-type" and value.startswith("text/html") for name, value in headers)
            for name, value in self.security_headers:
                lower = name.lower()
                if lower in present or (html and lower == "content-security-policy"):
                    continue
                headers.append((name, value))
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        return start

    def _response_headers(self, upstream: Any) -> list[tuple[str, str]]:
        headers: list[tuple[str, str]] = []
        present: set[str] = set()
        for name, value in upstream.items():
            lower = name.lower()
            if lower in _RESPONSE_HOP_BY_HOP or lower == "x-request-id":
                continue
            present.add(lower)
            headers.append((name, value))
        for name, value in self.security_headers:
            if name.lower() not in present:
                headers.append((name, value))
        return headers

    def _preflight(self, origin: str, request_id: str) -> tuple[int, list[tuple[str, str]], bytes]:
        if not self.cors.allowed(origin):
            return self._problem_tuple(403, "This origin is not allowed.", request_id=request_id)
        headers = self.cors.preflight_headers(origin)
        headers.append(("X-Request-ID", request_id))
        headers.append(("Content-Length", "0"))
        return 204, headers, b""

    def _unauthorized(
        self, detail: str, request_id: str, cors_headers: list[tuple[str, str]]
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        return self._problem_tuple(
            401,
            detail,
            request_id=request_id,
            extra_headers=[("WWW-Authenticate", 'Bearer realm="bazaar"'), *cors_headers],
        )

    def _problem_tuple(
        self,
        status: int,
        detail: str,
        *,
        request_id: str | None,
        retry_after: int | None = None,
        extra_headers: list[tuple[str, str]] | None = None,
        errors: list[dict[str, str]] | None = None,
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        body = json.dumps(problem_body(status, detail, errors=errors)).encode()
        headers = [
            ("Content-Type", PROBLEM_CONTENT_TYPE),
            ("Content-Length", str(len(body))),
            *self.security_headers,
        ]
        if request_id:
            headers.append(("X-Request-ID", request_id))
        if retry_after is not None:
            headers.append(("Retry-After", str(max(1, int(retry_after)))))
        if extra_headers:
            headers.extend(extra_headers)
        return status, headers, body

    def _problem(
        self,
        start_response: StartResponse,
        environ: dict[str, Any],
        status: int,
        detail: str,
        *,
        request_id: str | None,
        errors: list[dict[str, str]] | None = None,
    ) -> Iterable[bytes]:
        request_id = request_id or clean_request_id(environ.get("HTTP_X_REQUEST_ID"))
        status, headers, body = self._problem_tuple(status, detail, request_id=request_id, errors=errors)
        start_response(status_line(status), headers)
        return [body]


_SAFE_PATH = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~/!$&'()*+,;=:@")


def _quote_path(path: str) -> str:
    """WSGI gives PATH_INFO decoded as latin-1; encode it back for the upstream request line."""
    if all(char in _SAFE_PATH for char in path):
        return path
    from urllib.parse import quote

    return quote(path.encode("latin-1"), safe="/!$&'()*+,;=:@-._~")
