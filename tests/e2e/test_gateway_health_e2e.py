"""Issue 7, active health checks through real processes: an instance that is up but fails its
readiness check (its Redis is cut off) leaves rotation, and comes back when it passes again."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from urllib.parse import urlsplit

from bazaar_common.demo import DEMO_ADMIN
from bazaar_devtools.e2e import wait_for

PRODUCTS = "/api/v1/catalog/products"


class TcpRelay:
    """A TCP relay to a real server that a test can cut and restore (a network partition)."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self._listener: socket.socket | None = None
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def up(self) -> TcpRelay:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def down(self) -> None:
        with self._lock:
            sockets, self._sockets = self._sockets, []
            listener, self._listener = self._listener, None
        for sock in [listener, *sockets]:
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=2)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.close()


def _instance_view(platform, token: str, instance_id: str) -> dict:
    overview = platform.api("GET", "/api/v1/gateway/services", token).json()
    for service in overview["services"]:
        for instance in service["instances"]:
            if instance["instance_id"] == instance_id:
                return instance
    raise AssertionError(f"{instance_id} is not registered")


def test_failing_readiness_takes_an_instance_out_of_rotation_until_it_passes(platform):
    platform.ensure_one_instance_each()
    token = platform.token(DEMO_ADMIN.email)
    redis_address = urlsplit(platform.redis_url)
    relay = TcpRelay((redis_address.hostname, redis_address.port or 6379)).up()
    database = urlsplit(platform.redis_url).path or "/0"
    sick = platform.start_instance(
        "catalog",
        REDIS_URL=f"redis://127.0.0.1:{relay.port}{database}",
        DISCOVERY_REDIS_URL=platform.redis_url,
        # Redis only degrades readiness by default; this instance declares it required, so losing
        # it fails /readyz (the mechanism under test: a failing readiness check).
        READINESS_REQUIRED="database,redis",
    )
    try:
        relay.down()  # its readiness check (Redis) now fails; it stays registered (/healthz is fine)
        wait_for(lambda: _instance_view(platform, token, sick.instance_id)["healthy"] is False, 15,
                 "the gateway to take the failing instance out of rotation")  # fmt: skip
        before = _instance_view(platform, token, sick.instance_id)["requests"]
        statuses = [platform.api("GET", PRODUCTS).status_code for _ in range(20)]
        after = _instance_view(platform, token, sick.instance_id)["requests"]

        assert statuses == [200] * 20
        assert after == before  # no traffic while out of rotation

        relay.up()
        wait_for(lambda: _instance_view(platform, token, sick.instance_id)["healthy"] is True, 15,
                 "the instance to come back into rotation")  # fmt: skip

        def gets_traffic_again() -> bool:
            for _ in range(10):
                platform.api("GET", PRODUCTS)
            time.sleep(0.1)
            return _instance_view(platform, token, sick.instance_id)["requests"] > after

        wait_for(gets_traffic_again, 15, "traffic to reach the recovered instance")
    finally:
        platform.stop_instance(sick)
        relay.down()
        platform.ensure_one_instance_each()
