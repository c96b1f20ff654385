"""Serve one instance of a Bazaar Django project with granian, registered in discovery.

    python -m bazaar_common.serve catalog_service --service catalog --port 8120

Registration lives in the server's main process, not in each worker: one entry per instance
whatever the worker count. The heartbeat renews the entry only while the instance answers its own
``/healthz``, so a hung instance drops out within the TTL. On SIGTERM the instance deregisters
first, waits ``DISCOVERY_DRAIN_SECONDS`` for gateways to notice (their cache is ~1 s), then lets
granian stop its workers, which finish the requests in flight.

Metrics: with ``METRICS_PORT`` set, the main process serves ``/metrics`` on that port for all of
the instance's workers (:mod:`bazaar_common.metrics`); the public port does not serve them.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import urllib3

from bazaar_common.discovery import Heartbeat, RedisRegistry, drain_grace_seconds, instance_from_env
from bazaar_common.metrics import prepare_multiprocess, start_metrics_server

logger = logging.getLogger("bazaar.serve")


def healthz_probe(base_url: str, ttl: float) -> Callable[[], bool]:
    """True while the instance answers its own ``/healthz``.

    A busy instance answers slowly but is alive: only one that cannot answer within half the TTL
    is let go.
    """
    http = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=1.0, read=max(ttl / 2, 1.0)))

    def alive() -> bool:
        try:
            return http.request("GET", f"{base_url}/healthz").status == 200
        except urllib3.exceptions.HTTPError:
            return False

    return alive


def _wrap_stop_signals(heartbeat: Heartbeat) -> None:
    """Run after granian installed its handlers: deregister and drain, then let granian stop."""
    for sig in (signal.SIGTERM, signal.SIGINT):
        granian_handler = signal.getsignal(sig)

        def handler(signum: int, frame: Any, _granian: Any = granian_handler) -> None:
            heartbeat.drain(drain_grace_seconds())
            if callable(_granian):
                _granian(signum, frame)

        signal.signal(sig, handler)


def ensure_port_free(host: str, port: int) -> None:
    """Refuse to start on a port another process listens on.

    On Linux granian's workers bind with ``SO_REUSEPORT``, so a second server on a taken port
    does not fail: the kernel splits the connections between the two, and a stale instance keeps
    answering half the requests. Binding once without that option first makes it a clear error.
    """
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT leftovers are fine
        try:
            probe.bind((host, port))
        except OSError as error:
            message = f"{host}:{port} is already in use ({error.strerror}); not starting a second server there."
            raise SystemExit(message) from None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("package", help="the project's package, e.g. catalog_service")
    parser.add_argument("--service", required=True, help="the name it registers under, e.g. catalog")
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    parser.add_argument("--workers", type=int, default=int(os.environ.get("WEB_WORKERS", "1")))
    parser.add_argument("--threads", type=int, default=int(os.environ.get("WEB_THREADS", "8")))
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    import multiprocessing

    from granian import Granian
    from granian.constants import Interfaces
    from granian.log import LogLevels

    # Workers start as fresh interpreters: forking a process that runs the heartbeat thread could
    # copy a lock that thread holds (imports, logging) and hang the worker forever.
    multiprocessing.set_start_method("spawn", force=True)
    prepare_multiprocess()  # before any worker starts: they inherit the samples folder
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    args = parse_args(argv)
    ensure_port_free(args.host, args.port)
    server = Granian(
        f"{args.package}.config.wsgi:application",
        address=args.host,
        port=args.port,
        interface=Interfaces.WSGI,
        workers=args.workers,
        blocking_threads=args.threads,
        websockets=False,
        log_level=LogLevels.warning,
        workers_kill_timeout=int(os.environ.get("WORKERS_KILL_TIMEOUT", "20")),
        respawn_failed_workers=True,
    )
    instance = instance_from_env(args.service)
    if instance is not None and os.environ.get("DISCOVERY_BACKEND", "redis") == "redis":
        ttl = float(os.environ.get("DISCOVERY_TTL_SECONDS", "6"))
        registry = RedisRegistry.from_url(
            os.environ.get("DISCOVERY_REDIS_URL") or os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
            prefix=os.environ.get("DISCOVERY_PREFIX", "bazaar:registry"),
            ttl_seconds=ttl,
        )
        instance = replace(instance, metadata={**instance.metadata, "workers": args.workers, "threads": args.threads})
        heartbeat = Heartbeat(
            registry,
            instance,
            float(os.environ.get("DISCOVERY_HEARTBEAT_SECONDS", "2")),
            alive=healthz_probe(instance.base_url, ttl),
        )

        def start_heartbeat() -> None:
            _wrap_stop_signals(heartbeat)
            heartbeat.start()

        server.on_startup(start_heartbeat)
        server.on_shutdown(heartbeat.stop)
    start_metrics_server()
    server.serve()


if __name__ == "__main__":
    main()
