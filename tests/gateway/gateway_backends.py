"""A tiny real HTTP backend for the gateway's tests: a threaded WSGI server on a free port.

It echoes what it received (method, path, query, headers, body) as JSON, and can be told to be
slow, to fail, or to fail its readiness check. It is a real server on a real socket, registered in
the real registry — the gateway under test cannot tell it from a service.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from bazaar_common.discovery import Instance


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _QuietHandler(WSGIRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


class Backend:
    def __init__(self, service: str, name: str) -> None:
        self.service = service
        self.name = name
        self.ready = True
        self.fail_status: int | None = None
        self.fail_headers: list[tuple[str, str]] = []
        self.delay = 0.0
        self.hits = 0
        self.received: list[dict[str, Any]] = []
        self.schema: dict[str, Any] | None = None
        self._server = make_server("127.0.0.1", 0, self.app, server_class=_ThreadingServer, handler_class=_QuietHandler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def instance(self, **extra: Any) -> Instance:
        now = time.time()
        return Instance(
            service=self.service,
            instance_id=self.name,
            base_url=self.url,
            version="test",
            metadata={"test": True},
            registered_at=now,
            heartbeat_at=now,
            **extra,
        )

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def app(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        path = environ["PATH_INFO"]
        if path == "/readyz":
            status = "200 OK" if self.ready else "503 Service Unavailable"
            start_response(status, [("Content-Type", "application/json")])
            return [b'{"status":"ready"}' if self.ready else b'{"status":"not ready"}']
        if path == "/schema/openapi.json" and self.schema is not None:
            start_response("200 OK", [("Content-Type", "application/vnd.oai.openapi+json")])
            return [json.dumps(self.schema).encode()]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        self.hits += 1
        headers = {
            key[5:].replace("_", "-").lower(): value for key, value in environ.items() if key.startswith("HTTP_")
        }
        if environ.get("CONTENT_TYPE"):
            headers["content-type"] = environ["CONTENT_TYPE"]
        record = {
            "instance": self.name,
            "method": environ["REQUEST_METHOD"],
            "path": path,
            "query": environ.get("QUERY_STRING", ""),
            "headers": headers,
            "body": body.decode("utf-8", "replace"),
        }
        self.received.append(record)
        delay = self.delay
        if "slow" in path:
            delay = max(delay, float(environ.get("QUERY_STRING", "").partition("=")[2] or 2))
        if delay:
            time.sleep(delay)
        if self.fail_status is not None:
            start_response(
                f"{self.fail_status} Failing", [("Content-Type", "application/problem+json"), *self.fail_headers]
            )
            return [json.dumps({"status": self.fail_status, "instance": self.name}).encode()]
        if path.startswith("/api/v1/catalog/status/"):
            code = int(path.rsplit("/", 1)[1])
            start_response(f"{code} Status", [("Content-Type", "application/json")])
            return [json.dumps({"status": code}).encode()]
        payload = json.dumps(record).encode()
        start_response(
            "200 OK",
            [
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(payload))),
                ("X-Backend", self.name),
                ("Set-Cookie", "a=1; Path=/"),
                ("Set-Cookie", "b=2; Path=/"),
            ],
        )
        return [payload]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
