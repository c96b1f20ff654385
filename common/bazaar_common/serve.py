"""Serve one instance of a Bazaar Django project with granian, registered in discovery.

    python -m bazaar_common.serve catalog_service --service catalog --port 8120

Registration lives in the server's main process, not in each worker: one entry per instance
whatever the worker count. The heartbeat renews the entry only while the instance answers its own
``/healthz``, so a hung instance drops out within the TTL. On SIGTERM the instance deregisters
first, waits ``DRAIN_DELAY_SECONDS`` for gateways to notice (their cache is ~1 s), then lets
granian stop its workers, which finish the requests in flight.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import threading
import time
import uuid
from typing import Any

import urllib3

from bazaar_common.discovery import Instance, RedisRegistry

logger = logging.getLogger("bazaar.serve")


class InstanceRegistration:
    def __init__(self, registry: RedisRegistry, instance: Instance, interval: float, ttl: float) -> None:
        self.registry = registry
        self.instance = instance
        self.interval = interval
        self._stopped = threading.Event()
        self._registered = False
        # A busy instance answers slowly but is alive: only an instance that cannot answer within
        # half the TTL is let go.
        probe_timeout = urllib3.Timeout(connect=1.0, read=max(ttl / 2, 1.0))
        self._http = urllib3.PoolManager(retries=False, timeout=probe_timeout)

    def _alive(self) -> bool:
        try:
            return self._http.request("GET", f"{self.instance.base_url}/healthz").status == 200
        except urllib3.exceptions.HTTPError:
            return False

    def _beat(self) -> None:
        if not self._alive():
            return  # not (yet, or any more) serving: let the entry expire
        try:
            self.registry.register(Instance(**{**self.instance.__dict__, "heartbeat_at": time.time()}))
            self._registered = True
        except Exception as exc:  # Redis away: try again next beat, keep serving meanwhile
            logger.warning("heartbeat failed: %s", exc)

    def _run(self) -> None:
        while not self._stopped.is_set():
            self._beat()
            # Until the first registration, look often: the workers are still starting.
            self._stopped.wait(self.interval if self._registered else 0.2)

    def start(self) -> None:
        threading.Thread(target=self._run, name="discovery-heartbeat", daemon=True).start()

    def deregister(self) -> None:
        if self._stopped.is_set():
            return
        self._stopped.set()
        try:
            self.registry.deregister(self.instance.service, self.instance.instance_id)
            logger.warning("deregistered %s", self.instance.instance_id)
        except Exception as exc:
            logger.warning("deregistration failed (the TTL will expire it): %s", exc)


def _wrap_stop_signals(registration: InstanceRegistration, drain_delay: float) -> None:
    """Run after granian installed its handlers: deregister and wait, then let granian stop."""
    for sig in (signal.SIGTERM, signal.SIGINT):
        granian_handler = signal.getsignal(sig)

        def handler(signum: int, frame: Any, _granian: Any = granian_handler) -> None:
            registration.deregister()
            time.sleep(drain_delay)
            if callable(_granian):
                _granian(signum, frame)

        signal.signal(sig, handler)


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

    # Workers start as fresh interpreters: forking a process that runs the heartbeat thread could
    # copy a lock that thread holds (imports, logging) and hang the worker forever.
    multiprocessing.set_start_method("spawn", force=True)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    args = parse_args(argv)
    # Workers must not register themselves as well (bazaar_common.wsgi would, given INSTANCE_URL).
    instance_url = os.environ.pop("INSTANCE_URL", None)
    server = Granian(
        f"{args.package}.config.wsgi:application",
        address=args.host,
        port=args.port,
        interface="wsgi",
        workers=args.workers,
        blocking_threads=args.threads,
        websockets=False,
        log_level="warning",
        workers_kill_timeout=int(os.environ.get("WORKERS_KILL_TIMEOUT", "20")),
        respawn_failed_workers=True,
    )
    if instance_url:
        ttl = float(os.environ.get("DISCOVERY_TTL_SECONDS", "6"))
        registry = RedisRegistry.from_url(
            os.environ.get("DISCOVERY_REDIS_URL") or os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
            prefix=os.environ.get("DISCOVERY_PREFIX", "bazaar:registry"),
            ttl_seconds=ttl,
        )
        now = time.time()
        instance = Instance(
            service=args.service,
            instance_id=os.environ.get("INSTANCE_ID") or f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}",
            base_url=instance_url.rstrip("/"),
            version=os.environ.get("SERVICE_VERSION", "dev"),
            metadata={"pid": os.getpid(), "workers": args.workers, "threads": args.threads},
            registered_at=now,
            heartbeat_at=now,
        )
        registration = InstanceRegistration(
            registry, instance, float(os.environ.get("DISCOVERY_HEARTBEAT_SECONDS", "2")), ttl
        )
        drain_delay = float(os.environ.get("DRAIN_DELAY_SECONDS", "1.5"))
        server.on_startup(lambda: (_wrap_stop_signals(registration, drain_delay), registration.start()))
        server.on_shutdown(registration.deregister)
    server.serve()


if __name__ == "__main__":
    main()
