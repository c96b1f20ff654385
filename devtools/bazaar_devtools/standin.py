"""Stand-ins for other Bazaar services, for one service's own test suite (test support only).

A stand-in is a real HTTP server in the test process, registered in the real discovery registry, so
the service under test reaches it exactly as it reaches the real neighbour: discovery, service
token, timeouts, circuit breakers. Nothing in the service client is patched, so a suite that passes
against stand-ins has exercised the same code path production uses. Each suite decides what its
stand-ins answer; the e2e suite runs the real services instead.

- :class:`StandIn`: the server; answers through a handler ``(call) -> (status, json body)`` and
  records every :class:`Call` so tests can assert what the service sent.
- :func:`requires_service_token`: wraps a handler so it refuses callers the real internal
  endpoints would refuse (``IsService``).
- :class:`Registrations`: the discovery entries one test makes, removed again at its end.
- :func:`closed_port_url`: a URL where nothing listens (an instance that died without deregistering).
"""

from __future__ import annotations

import json
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from bazaar_common.auth.tokens import InvalidToken, verify_access_token
from bazaar_common.discovery import Instance, Registry, get_registry

__all__ = ["Call", "Handler", "Registrations", "StandIn", "closed_port_url", "requires_service_token"]


@dataclass
class Call:
    """One request a stand-in received, as the test wants to see it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # names lower-cased: HTTP header names are case-insensitive
    body: Any  # the decoded JSON body; None when the request had none


Handler = Callable[[Call], tuple[int, Any]]
"""Answers a call with ``(status, body)``; the body goes out as JSON, ``None`` sends an empty body."""


class _Server(ThreadingHTTPServer):
    # Concurrency tests open many connections at once; the default backlog of 5 would refuse some,
    # and the service under test would see a neighbour that is down instead of a busy one.
    request_queue_size = 128
    # A request still being answered when the test ends must not keep the test run alive.
    daemon_threads = True


class StandIn:
    """A real HTTP server on a free local port that answers every request through ``handler``.

    Each request is recorded in :attr:`calls` before it is answered, the refused ones included, so a
    test can tell "never called" from "called and refused".
    """

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.calls: list[Call] = []
        self._server: _Server | None = None

    @property
    def base_url(self) -> str:
        assert self._server is not None, "start() the stand-in first"
        host, port = self._server.server_address[:2]
        if isinstance(host, bytes):
            host = host.decode()
        return f"http://{host}:{port}"

    def calls_to(self, method: str, path: str) -> list[Call]:
        return [call for call in self.calls if call.method == method and call.path == path]

    def start(self) -> StandIn:
        self._server = _Server(("127.0.0.1", 0), _request_handler_for(self))
        # A short poll interval keeps stop() quick; every test starts and stops its own stand-ins.
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def receive(self, call: Call) -> tuple[int, Any]:
        """Record ``call`` and answer it (the HTTP layer calls this; tests normally do not)."""
        self.calls.append(call)
        return self.handler(call)


def _request_handler_for(stand_in: StandIn) -> type[BaseHTTPRequestHandler]:
    """The http.server glue: decode the request into a Call, encode the answer as JSON."""

    class RequestHandler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            status, body = stand_in.receive(self._read_call())
            payload = b"" if body is None else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _read_call(self) -> Call:
            url = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            return Call(
                method=self.command,
                path=url.path,
                query=parse_qs(url.query),
                headers={name.lower(): value for name, value in self.headers.items()},
                body=json.loads(raw) if raw else None,
            )

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle  # noqa: N815 (http.server's naming)

        def log_message(self, *args: Any) -> None:  # keep the test output quiet
            pass

    return RequestHandler


def requires_service_token(handler: Handler) -> Handler:
    """Guard ``handler`` as the real internal endpoints are guarded: service tokens only.

    The bearer token is really verified (signature, issuer, audience, expiry) against the keys the
    test run trusts, so a service that forgets its token, or forwards a user's, is refused here just
    as the real neighbour would refuse it: 401 without a valid token, 403 for a non-service caller.
    """

    def guarded(call: Call) -> tuple[int, Any]:
        token = call.headers.get("authorization", "").removeprefix("Bearer ")
        try:
            principal = verify_access_token(token)
        except InvalidToken:
            return 401, {"detail": "service token required"}
        if not principal.is_service:
            return 403, {"detail": "services only"}
        return handler(call)

    return guarded


def closed_port_url() -> str:
    """A URL where nothing listens: a service instance that died without deregistering.

    The port was free a moment ago and is released at once, so connecting is refused (not hung).
    """
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


class Registrations:
    """The discovery entries one test makes, so they can be taken away again and leave nothing behind.

    Entries go into the real registry. Each change also drops the registry's in-process lookup
    cache for that service, because the next call must see the change, not a lookup cached a moment
    before it; :meth:`close` drops the whole cache, so the next test does not route to this test's
    servers, which are gone by then.
    """

    def __init__(self, registry: Registry | None = None) -> None:
        self.registry = registry if registry is not None else get_registry()
        self._instances: list[Instance] = []

    def register(self, service: str, base_url: str) -> Instance:
        instance = Instance(service=service, instance_id=f"test-{service}-{uuid.uuid4().hex[:8]}", base_url=base_url)
        self.registry.register(instance)
        self.registry.invalidate(service)
        self._instances.append(instance)
        return instance

    def register_dead(self, service: str) -> Instance:
        """An instance of ``service`` that crashed without deregistering: discovery names it, nothing answers."""
        return self.register(service, closed_port_url())

    def deregister(self, service: str) -> None:
        """Remove this test's instances of ``service``: it shut down cleanly, discovery knows of none."""
        for instance in [i for i in self._instances if i.service == service]:
            self.registry.deregister(service, instance.instance_id)
            self._instances.remove(instance)
        self.registry.invalidate(service)

    def close(self) -> None:
        for instance in self._instances:
            self.registry.deregister(instance.service, instance.instance_id)
        self._instances.clear()
        self.registry.invalidate()
