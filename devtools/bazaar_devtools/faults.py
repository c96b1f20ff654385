"""Fault injection for end-to-end tests: a TCP proxy that misbehaves on demand, and process signals.

:class:`FaultProxy` sits between a client (a service, a worker) and a server (the broker,
PostgreSQL): point the client at ``proxy.url_for(real_url)`` and then, while the platform runs,

* ``proxy.pause()``   — accept connections but forward nothing (a hung server, a network stall);
* ``proxy.refuse()``  — close every new connection at once (a server refusing connections);
* ``proxy.reset()``   — drop every open connection with an RST (a restart, a cut cable);
* ``proxy.heal()``    — back to forwarding.

The proxy is a thread in the test process (no root, no iptables), so a test can fault one
dependency for one group of processes while the rest of the machine is untouched.

:func:`freeze` / :func:`kill_tree` act on the platform's processes (``Proc.popen``) the way a
machine would: a SIGSTOP'd instance keeps its sockets open and answers nothing; a SIGKILL'd one
gets no chance to acknowledge, flush or deregister.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import socket
import struct
import threading
import time
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

FORWARD = "forward"
PAUSE = "pause"
REFUSE = "refuse"


class FaultProxy:
    """A TCP forwarder from ``127.0.0.1:<port>`` to ``target_host:target_port`` with a fault switch."""

    def __init__(self, target_host: str, target_port: int, *, listen_port: int = 0) -> None:
        self.target = (target_host, target_port)
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", listen_port))
        self._listener.listen(256)
        self.port = self._listener.getsockname()[1]
        self.mode = FORWARD
        self._pairs: set[tuple[socket.socket, socket.socket]] = set()
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self.connections = 0  # accepted so far, for tests that check the proxy was really used
        self._thread = threading.Thread(target=self._accept_loop, name=f"fault-proxy-{self.port}", daemon=True)
        self._thread.start()

    @classmethod
    def for_url(cls, url: str) -> FaultProxy:
        parts = urlsplit(url)
        default = {"redis": 6379, "postgres": 5432, "postgresql": 5432, "amqp": 5672}.get(parts.scheme, 0)
        return cls(parts.hostname or "127.0.0.1", parts.port or default)

    def url_for(self, url: str) -> str:
        """``url`` with its host and port replaced by the proxy's (credentials and path kept)."""
        parts = urlsplit(url)
        credentials = parts.netloc.rpartition("@")[0]
        netloc = f"{credentials}@127.0.0.1:{self.port}" if credentials else f"127.0.0.1:{self.port}"
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))

    # --- the switch -----------------------------------------------------------------------------
    def pause(self) -> None:
        """Stop forwarding bytes in both directions; connections stay open and hang."""
        self.mode = PAUSE

    def refuse(self) -> None:
        """New connections are closed at once and open ones are reset."""
        self.mode = REFUSE
        self.reset()

    def reset(self) -> None:
        """Abort every open connection with an RST (the mode is unchanged)."""
        with self._lock:
            pairs, self._pairs = self._pairs, set()
        for pair in pairs:
            for sock in pair:
                _abort(sock)

    def heal(self) -> None:
        self.mode = FORWARD

    @contextlib.contextmanager
    def fault(self, mode: str, seconds: float) -> Iterator[None]:
        """``with proxy.fault(REFUSE, 5): ...`` — faulted for ``seconds`` (at least), then healed."""
        started = time.monotonic()
        {PAUSE: self.pause, REFUSE: self.refuse}[mode]()
        try:
            yield
            time.sleep(max(0.0, seconds - (time.monotonic() - started)))
        finally:
            self.heal()

    def close(self) -> None:
        self._stopped.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        self.reset()

    # --- the forwarding ------------------------------------------------------------------------
    def _accept_loop(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            if self.mode == REFUSE:
                _abort(client)
                continue
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.target, timeout=5)
        except OSError:
            _abort(client)
            return
        upstream.settimeout(None)
        pair = (client, upstream)
        with self._lock:
            self._pairs.add(pair)
        selector = selectors.DefaultSelector()
        selector.register(client, selectors.EVENT_READ, upstream)
        selector.register(upstream, selectors.EVENT_READ, client)
        try:
            while not self._stopped.is_set():
                if self.mode == PAUSE:
                    time.sleep(0.05)  # hold the bytes: both sides wait as on a stalled network
                    continue
                for key, _ in selector.select(timeout=0.2):
                    data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                    if not data:
                        return
                    key.data.sendall(data)
                with self._lock:
                    if pair not in self._pairs:
                        return
        except OSError:
            return
        finally:
            selector.close()
            with self._lock:
                self._pairs.discard(pair)
            for sock in pair:
                _abort(sock)


def _abort(sock: socket.socket) -> None:
    """Close with SO_LINGER 0: the peer sees a reset, not an orderly end of stream."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()


# --- processes --------------------------------------------------------------------------------


def _group(pid: int) -> int:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return -1


def signal_tree(pid: int, sig: int) -> bool:
    """Send ``sig`` to the process group led by ``pid`` (a worker and its pool children)."""
    group = _group(pid)
    try:
        if group == pid:
            os.killpg(group, sig)
        else:
            os.kill(pid, sig)
    except ProcessLookupError:
        return False
    return True


def kill_tree(pid: int) -> bool:
    """SIGKILL a process and its group, as when a machine or container dies."""
    return signal_tree(pid, signal.SIGKILL)


@contextlib.contextmanager
def frozen(pid: int, seconds: float) -> Iterator[None]:
    """SIGSTOP ``pid`` (and its group) for ``seconds``, then SIGCONT, even if the body fails."""
    signal_tree(pid, signal.SIGSTOP)
    started = time.monotonic()
    try:
        yield
        time.sleep(max(0.0, seconds - (time.monotonic() - started)))
    finally:
        signal_tree(pid, signal.SIGCONT)


def freeze_in_background(pid: int, seconds: float) -> threading.Thread:
    """SIGSTOP now, SIGCONT after ``seconds`` from a thread, so the test can keep sending load."""
    signal_tree(pid, signal.SIGSTOP)

    def thaw() -> None:
        time.sleep(seconds)
        signal_tree(pid, signal.SIGCONT)

    thread = threading.Thread(target=thaw, daemon=True)
    thread.start()
    return thread
