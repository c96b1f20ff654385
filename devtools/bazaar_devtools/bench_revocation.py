"""What the revocation check costs: CPU per request of the gateway and of a service, with and without.

    python -m bazaar_devtools.bench_revocation [--rounds 3] [--duration 4] [--connections 8]

Every request carrying a user token is checked against the user's "not before" time
(:mod:`bazaar_common.auth.revocation`), at the gateway and again at the service. This starts two
identical pairs of real processes — a gateway exactly as the launcher runs it, in front of a
Django + DRF backend authenticating as every service does (:mod:`bazaar_devtools.bench_backend`
with ``BENCH_BACKEND_AUTH=1``) — that differ only in ``REVOCATION_REDIS_URL``:

* ``on``: the run's Redis (the lookup is made on every request, as deployed);
* ``off``: a port nothing listens on, so the check fails open and skips Redis (one refused connect
  per second per process): the cost of everything but the lookup.

Rounds alternate between the pairs (so other load on the machine hits both alike) and the CPU
time (utime + stime from /proc, over each process tree) is divided by the requests served:
directly on the backend (the service's cost) and through the gateway (the gateway's own). Redis's
own count of ``GET`` commands (``INFO commandstats``) gives the lookups per request, a figure that
does not depend on how busy the machine is: through the gateway, the gateway's and the service's
together.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

import redis

from bazaar_devtools.bench_gateway import (
    PATH,
    ROOT,
    cpu_seconds,
    free_port,
    process_tree,
    run_python_load,
    spawn,
    stop,
    wait_http,
)

VARIANTS = ("on", "off")


def lookup_cpu_us(redis_url: str, calls: int = 5000) -> float:
    """CPU of one lookup as the services make it (revocation.not_before_ms), in this process."""
    from django.conf import settings

    if not settings.configured:
        settings.configure(REDIS_URL=redis_url, REVOCATION_REDIS_URL=redis_url)
    from bazaar_common.auth import revocation

    user_id = str(uuid.uuid4())
    revocation.not_before_ms(user_id)  # the connection
    started = time.process_time()
    for _ in range(calls):
        revocation.not_before_ms(user_id)
    return (time.process_time() - started) * 1_000_000 / calls


def redis_gets(client: redis.Redis) -> int:
    return int(client.info("commandstats").get("cmdstat_get", {}).get("calls", 0))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=4.0, help="seconds per loaded run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--load-processes", type=int, default=2)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    args = parser.parse_args(argv)

    from bazaar_common.auth import testing as auth_testing
    from bazaar_common.discovery import Instance, RedisRegistry

    load_before = " ".join(f"{value:.2f}" for value in os.getloadavg())
    work = Path(tempfile.mkdtemp(prefix="bazaar-bench-revocation-"))
    processes = []
    embedded = None
    redis_url = os.environ.get("REDIS_URL")
    if not redis_url:
        from bazaar_devtools.platform import EmbeddedRedis

        embedded = EmbeddedRedis(directory=work / "redis").start()
        redis_url = embedded.url
    nowhere = f"redis://127.0.0.1:{free_port()}/0"
    jwks_file = auth_testing.install_test_jwks()
    user_id = str(uuid.uuid4())
    token = auth_testing.make_token(user_id, ("customer",), lifetime=3600)
    headers = {"Authorization": f"Bearer {token}"}
    base_env = {
        **os.environ,
        "DEBUG": "1",
        "REDIS_URL": redis_url,
        "BAZAAR_VAR_DIR": str(work),
        "JWT_JWKS_FILE": jwks_file,
        "LOG_LEVEL": "ERROR",  # the "off" pair would log its skipped check once a second
        "PYTHONPATH": os.pathsep.join([str(ROOT / "devtools"), os.environ.get("PYTHONPATH", "")]),
    }
    pairs: dict[str, dict[str, object]] = {}
    try:
        for variant in VARIANTS:
            prefix = f"bench-{uuid.uuid4().hex[:6]}:registry"
            env = {
                **base_env,
                "DISCOVERY_PREFIX": prefix,
                "REVOCATION_REDIS_URL": redis_url if variant == "on" else nowhere,
            }
            port = free_port()
            backend = spawn(
                [str(Path(sys.executable).parent / "granian"), "--interface", "wsgi", "--host", "127.0.0.1",
                 "--port", str(port), "--workers", "1", "--blocking-threads", "8", "--no-ws",
                 "--log-level", "warning", "bazaar_devtools.bench_backend:application"],
                {**env, "BENCH_BACKEND_AUTH": "1"}, ROOT,
            )  # fmt: skip
            processes.append(backend)
            backend_url = f"http://127.0.0.1:{port}"
            wait_http(backend_url + "/ready", timeout=120)
            RedisRegistry(redis.Redis.from_url(redis_url), prefix=prefix, ttl_seconds=3600).register(
                Instance("orders", f"bench-orders-{variant}", backend_url, "bench", {}, time.time(), time.time())
            )
            gateway_port = free_port()
            gateway = spawn(
                [sys.executable, "-m", "bazaar_common.serve", "gateway", "--service", "gateway",
                 "--port", str(gateway_port), "--workers", "1", "--threads", "16"],
                {**env, "GATEWAY_RATE_LIMITS": "anonymous=100000000/60,user=100000000/60", "GATEWAY_ACCESS_LOG": "0"},
                ROOT / "gateway",
            )  # fmt: skip
            processes.append(gateway)
            gateway_url = f"http://127.0.0.1:{gateway_port}"
            wait_http(gateway_url + "/healthz", timeout=120)
            wait_http(gateway_url + PATH)
            pairs[variant] = {"backend": backend, "backend_url": backend_url, "gateway": gateway,
                              "gateway_url": gateway_url}  # fmt: skip

        # Both pairs answer the user's token (and refuse none): the check runs, it does not refuse.
        for variant, pair in pairs.items():
            for url in (pair["backend_url"], pair["gateway_url"]):
                warm = run_python_load(f"warm-up {variant}", f"{url}{PATH}", headers, 1.5, args.connections, 1)
                if warm.errors:
                    raise RuntimeError(f"{variant}: {warm.errors} of {warm.requests} warm-up requests failed at {url}")

        totals = {(variant, side): [0.0, 0] for variant in VARIANTS for side in ("service", "gateway")}
        rps: dict[tuple[str, str], list[float]] = {key: [] for key in totals}
        lookups = dict.fromkeys(totals, 0)
        store = redis.Redis.from_url(redis_url)
        for _ in range(args.rounds):
            for variant in VARIANTS:
                pair = pairs[variant]
                for side, url, measured in (
                    ("service", pair["backend_url"], pair["backend"]),
                    ("gateway", pair["gateway_url"], pair["gateway"]),
                ):
                    gets_before = redis_gets(store)
                    before = cpu_seconds(process_tree(measured.pid))  # type: ignore[attr-defined]
                    result = run_python_load(
                        f"{side} {variant}", f"{url}{PATH}", headers, args.duration, args.connections,
                        args.load_processes,
                    )  # fmt: skip
                    if result.errors:
                        raise RuntimeError(f"{side} {variant}: {result.errors} failed requests")
                    totals[(variant, side)][0] += cpu_seconds(process_tree(measured.pid)) - before  # type: ignore[attr-defined]
                    totals[(variant, side)][1] += result.requests
                    lookups[(variant, side)] += redis_gets(store) - gets_before
                    rps[(variant, side)].append(result.rps)

        figures: dict[str, float] = {}
        print()
        print(f"load average before the run: {load_before}; rounds: {args.rounds}, {args.duration:.0f} s each")
        print(f"{'':28} {'CPU ms/request':>15} {'Redis GETs/request':>19} {'req/s (median)':>15} {'requests':>9}")
        for side in ("service", "gateway"):
            for variant in VARIANTS:
                cpu, served = totals[(variant, side)]
                per_request = cpu * 1000 / max(1, served)
                figures[f"{side}_{variant}_cpu_ms"] = round(per_request, 4)
                gets = lookups[(variant, side)] / max(1, served)
                figures[f"{side}_{variant}_redis_gets_per_request"] = round(gets, 3)
                median_rps = sorted(rps[(variant, side)])[len(rps[(variant, side)]) // 2]
                label = f"{side}, revocation check {variant}"
                print(f"{label:28} {per_request:15.3f} {gets:19.2f} {median_rps:15.0f} {served:9d}")
        print()
        for side in ("service", "gateway"):
            added = figures[f"{side}_on_cpu_ms"] - figures[f"{side}_off_cpu_ms"]
            share = added / figures[f"{side}_on_cpu_ms"] * 100 if figures[f"{side}_on_cpu_ms"] else 0.0
            figures[f"{side}_lookup_cpu_ms"] = round(added, 4)
            print(f"the lookup at the {side}: {added:+.3f} ms CPU per request ({share:.1f}% of its CPU)")
        figures["lookup_cpu_us_in_process"] = round(lookup_cpu_us(redis_url), 1)
        print(f"one lookup in this process (revocation.not_before_ms, 5,000 calls): "
              f"{figures['lookup_cpu_us_in_process']:.1f} µs CPU")  # fmt: skip
        if args.json:
            print(json.dumps(figures, indent=2))
        return 0
    finally:
        for process in reversed(processes):
            stop(process)
        if embedded is not None:
            embedded.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
