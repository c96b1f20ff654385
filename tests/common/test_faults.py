"""The fault proxy forwards, hangs, refuses and resets connections as the e2e tests expect."""

from __future__ import annotations

import contextlib
import socket
import threading

import pytest

from bazaar_devtools.faults import PAUSE, FaultProxy


@pytest.fixture
def echo_server():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=_echo, args=(conn,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    yield listener.getsockname()[1]
    listener.close()


def _echo(conn: socket.socket) -> None:
    with conn, contextlib.suppress(OSError):  # the proxy resets connections on purpose
        while data := conn.recv(1024):
            conn.sendall(data)


def _roundtrip(port: int, payload: bytes = b"ping", timeout: float = 2) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(payload)
        return sock.recv(1024)


def test_proxy_forwards_then_refuses_then_heals(echo_server):
    proxy = FaultProxy("127.0.0.1", echo_server)
    try:
        assert _roundtrip(proxy.port) == b"ping"
        proxy.refuse()
        with pytest.raises((ConnectionError, OSError)) as refused:
            _roundtrip(proxy.port)
        assert not isinstance(refused.value, TimeoutError)
        proxy.heal()
        assert _roundtrip(proxy.port, b"again") == b"again"
    finally:
        proxy.close()


def test_paused_proxy_hangs_and_reset_drops_open_connections(echo_server):
    proxy = FaultProxy("127.0.0.1", echo_server)
    try:
        sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=0.5)
        sock.sendall(b"one")
        assert sock.recv(16) == b"one"
        with proxy.fault(PAUSE, 0):
            sock.sendall(b"two")
            with pytest.raises(TimeoutError):
                sock.recv(16)
        assert sock.recv(16) == b"two"  # healed: the held bytes go through
        proxy.reset()
        sock.settimeout(2)
        with pytest.raises(ConnectionResetError):
            sock.recv(16)  # an RST, not an orderly end of stream (which would return b"")
        sock.close()
    finally:
        proxy.close()


def test_url_for_keeps_credentials_and_database():
    proxy = FaultProxy("127.0.0.1", 5432)
    try:
        assert proxy.url_for("postgres://postgres:pw@db.example:5432/bazaar_orders") == (
            f"postgres://postgres:pw@127.0.0.1:{proxy.port}/bazaar_orders"
        )
        assert proxy.url_for("redis://127.0.0.1:6379/3") == f"redis://127.0.0.1:{proxy.port}/3"
    finally:
        proxy.close()
