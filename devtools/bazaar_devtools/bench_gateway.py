"""Benchmark of the gateway's hot path: direct-to-service vs through the gateway, in one run.

    python -m bazaar_devtools.bench_gateway [--rounds 3] [--duration 5] [--connections 16]
        [--gateway-workers 1] [--gateway-threads 16] [--backends 1] [--balancer least_outstanding]

It starts what it needs: Redis (``REDIS_URL``, else an embedded redis-server), ``--backends``
instances of a Django + DRF backend (:mod:`bazaar_devtools.bench_backend`, served by granian like a
service) registered as the ``orders`` service, and the gateway exactly as the launcher runs it
(``python -m bazaar_common.serve gateway …``) with everything on: edge JWT check (a real RS256
token), Redis rate limiting (limits set high enough never to trip), breakers, health checks, load
balancing. Load comes from a separate process: ``wrk`` when installed (``apt-get install wrk``),
else a small multi-process urllib3 load generator.

Printed: req/s, p50 and p99 for direct and through-gateway, their ratio, the median added to an
unloaded request (one connection), and the gateway's CPU time per request (from /proc, summed over
the gateway's processes).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import redis
import urllib3

ROOT = Path(__file__).resolve().parents[2]
PATH = "/api/v1/orders"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Result:
    label: str
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


# ------------------------------------------------------------------------------------------
# Processes
# ------------------------------------------------------------------------------------------
def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, timeout: float = 30) -> None:
    http = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=0.5, read=2))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if http.request("GET", url).status < 500:
                return
        except urllib3.exceptions.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def spawn(command: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        command, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(process.pid, signal.SIGKILL)


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants, from /proc."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(parents.get(current, []))
    return tree


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime + stime
    return total / CLOCK_TICKS


# ------------------------------------------------------------------------------------------
# Load generators
# ------------------------------------------------------------------------------------------
_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _wrk_figure(pattern: str, output: str) -> str:
    """One figure of wrk's report; a report without it means wrk failed."""
    found = re.search(pattern, output)
    if found is None:
        raise RuntimeError(f"wrk's report has no {pattern!r}:\n{output}")
    return found.group(1)


def _to_ms(text: str) -> float:
    found = re.match(r"([\d.]+)(us|ms|s|m)", text)
    if not found:
        raise ValueError(f"cannot read wrk latency {text!r}")
    return float(found.group(1)) * _UNITS[found.group(2)]


def run_wrk(label: str, url: str, headers: dict[str, str], duration: float, connections: int, threads: int) -> Result:
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        "--latency",
        "--timeout",
        "10s",
    ]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    output = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    requests_done = int(_wrk_figure(r"(\d+) requests in ([\d.]+)(\w+)", output))
    rps = float(_wrk_figure(r"Requests/sec:\s+([\d.]+)", output))
    p50 = _to_ms(_wrk_figure(r"\s50%\s+(\S+)", output))
    p99 = _to_ms(_wrk_figure(r"\s99%\s+(\S+)", output))
    errors = 0
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if non_2xx:
        errors += int(non_2xx.group(1))
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    if socket_errors:
        errors += sum(int(value) for value in socket_errors.groups())
    return Result(label, requests_done, duration, rps, p50, p99, errors)


def _python_worker(
    url: str, headers: dict[str, str], deadline: float, connections: int, queue: multiprocessing.Queue[Any]
) -> None:
    import threading

    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()

    def loop() -> None:
        http = urllib3.PoolManager(maxsize=1, retries=False)
        mine: list[float] = []
        while time.time() < deadline:
            started = time.perf_counter()
            try:
                response = http.request("GET", url, headers=headers)
                if response.status >= 300:
                    errors[0] += 1
            except urllib3.exceptions.HTTPError:
                errors[0] += 1
            mine.append((time.perf_counter() - started) * 1000)
        with lock:
            latencies.extend(mine)

    workers = [threading.Thread(target=loop) for _ in range(connections)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    queue.put((latencies, errors[0]))


def run_python_load(
    label: str, url: str, headers: dict[str, str], duration: float, connections: int, threads: int
) -> Result:
    processes = max(1, threads)
    deadline = time.time() + duration
    queue: multiprocessing.Queue[Any] = multiprocessing.Queue()
    per_process = max(1, connections // processes)
    workers = [
        multiprocessing.Process(target=_python_worker, args=(url, headers, deadline, per_process, queue))
        for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    latencies: list[float] = []
    errors = 0
    for _ in workers:
        found, failed = queue.get()
        latencies.extend(found)
        errors += failed
    for worker in workers:
        worker.join()
    latencies.sort()
    count = len(latencies)
    return Result(
        label, count, duration, count / duration,
        latencies[count // 2] if count else 0.0, latencies[int(count * 0.99)] if count else 0.0, errors,
    )  # fmt: skip


def median_result(results: list[Result]) -> Result:
    """The round with the median throughput."""
    ordered = sorted(results, key=lambda result: result.rps)
    return ordered[len(ordered) // 2]


# ------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per loaded run")
    parser.add_argument("--rounds", type=int, default=3, help="alternating direct/gateway rounds")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--load-threads", type=int, default=2)
    parser.add_argument("--gateway-workers", type=int, default=1)
    parser.add_argument("--gateway-threads", type=int, default=16)
    parser.add_argument("--backend-workers", type=int, default=1)
    parser.add_argument("--backend-threads", type=int, default=8)
    parser.add_argument("--backends", type=int, default=1, help="backend instances behind the gateway")
    parser.add_argument("--skew-ms", type=float, default=0.0, help="extra latency of the second backend instance")
    parser.add_argument("--balancer", default="least_outstanding", choices=["least_outstanding", "round_robin"])
    parser.add_argument("--access-log", action="store_true", help="keep the gateway's access log on")
    parser.add_argument("--no-direct", action="store_true", help="measure only through the gateway")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    parser.add_argument("--load", choices=["auto", "wrk", "python"], default="auto")
    args = parser.parse_args(argv)
    load = run_wrk if (args.load == "wrk" or (args.load == "auto" and shutil.which("wrk"))) else run_python_load

    sys.path.insert(0, str(ROOT / "common"))
    from bazaar_common.auth import testing as auth_testing
    from bazaar_common.discovery import Instance, RedisRegistry

    load_before = " ".join(f"{value:.2f}" for value in os.getloadavg())
    work = Path(tempfile.mkdtemp(prefix="bazaar-bench-"))
    processes: list[subprocess.Popen[bytes]] = []
    embedded = None
    redis_url = os.environ.get("REDIS_URL")
    if not redis_url:
        from bazaar_devtools.platform import EmbeddedRedis

        embedded = EmbeddedRedis(directory=work / "redis").start()
        redis_url = embedded.url
    prefix = f"bench-{uuid.uuid4().hex[:6]}:registry"
    registry = RedisRegistry(redis.Redis.from_url(redis_url), prefix=prefix, ttl_seconds=3600)
    jwks_file = auth_testing.install_test_jwks()
    token = auth_testing.make_token(str(uuid.uuid4()), ("customer",), lifetime=3600)
    headers = {"Authorization": f"Bearer {token}"}
    base_env = {
        **os.environ,
        "DEBUG": "1",
        "REDIS_URL": redis_url,
        "BAZAAR_VAR_DIR": str(work),
        "JWT_JWKS_FILE": jwks_file,
        "DISCOVERY_PREFIX": prefix,
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": os.pathsep.join([str(ROOT / "devtools"), os.environ.get("PYTHONPATH", "")]),
    }
    try:
        backend_urls = []
        for index in range(args.backends):
            port = free_port()
            processes.append(spawn(
                [str(Path(sys.executable).parent / "granian"), "--interface", "wsgi", "--host", "127.0.0.1",
                 "--port", str(port), "--workers", str(args.backend_workers),
                 "--blocking-threads", str(args.backend_threads), "--no-ws", "--log-level", "warning",
                 "bazaar_devtools.bench_backend:application"],
                {**base_env, "BENCH_BACKEND_DELAY_MS": str(args.skew_ms if index == 1 else 0)}, ROOT,
            ))  # fmt: skip
            url = f"http://127.0.0.1:{port}"
            wait_http(url + "/ready")
            registry.register(
                Instance("orders", f"bench-orders-{index + 1}", url, "bench", {}, time.time(), time.time())
            )
            backend_urls.append(url)
        gateway_port = free_port()
        gateway_env = {
            **base_env,
            "GATEWAY_RATE_LIMITS": "anonymous=100000000/60,user=100000000/60",
            "GATEWAY_BALANCER": args.balancer,
            "GATEWAY_ACCESS_LOG": "1" if args.access_log else "0",
            "LOG_LEVEL": "INFO" if args.access_log else "WARNING",
        }
        gateway_command = [
            sys.executable, "-m", "bazaar_common.serve", "gateway", "--service", "gateway",
            "--port", str(gateway_port), "--workers", str(args.gateway_workers),
            "--threads", str(args.gateway_threads),
        ]  # fmt: skip
        gateway = spawn(gateway_command, gateway_env, ROOT / "gateway")
        processes.append(gateway)
        gateway_url = f"http://127.0.0.1:{gateway_port}"
        wait_http(gateway_url + "/healthz")
        wait_http(gateway_url + PATH)

        # Warm up both paths (connections, caches, JIT-less but lazy imports).
        load("warm-up", backend_urls[0] + PATH, headers, 2, args.connections, args.load_threads)
        load("warm-up", gateway_url + PATH, headers, 2, args.connections, args.load_threads)

        # Direct and gateway runs alternate, round after round, and the median round counts: other
        # load on the machine then hits both sides alike instead of skewing the ratio.
        rounds: dict[str, list[Result]] = {"quiet_direct": [], "quiet_gateway": [], "direct": [], "gateway": []}
        cpu_used = 0.0
        gateway_requests = 0
        for _ in range(args.rounds):
            rounds["quiet_direct"].append(load("direct, 1 connection", backend_urls[0] + PATH, headers, 2, 1, 1))
            rounds["quiet_gateway"].append(load("gateway, 1 connection", gateway_url + PATH, headers, 2, 1, 1))
            if not args.no_direct:
                rounds["direct"].append(
                    load(
                        f"direct, {args.connections} connections",
                        backend_urls[0] + PATH,
                        headers,
                        args.duration,
                        args.connections,
                        args.load_threads,
                    )  # fmt: skip
                )
            cpu_before = cpu_seconds(process_tree(gateway.pid))
            through_round = load(f"gateway, {args.connections} connections", gateway_url + PATH, headers,
                                 args.duration, args.connections, args.load_threads)  # fmt: skip
            cpu_used += cpu_seconds(process_tree(gateway.pid)) - cpu_before
            gateway_requests += through_round.requests
            rounds["gateway"].append(through_round)
        quiet_direct = median_result(rounds["quiet_direct"])
        quiet_gateway = median_result(rounds["quiet_gateway"])
        through = median_result(rounds["gateway"])
        direct = median_result(rounds["direct"]) if rounds["direct"] else None
        results = [quiet_direct, quiet_gateway, *([direct] if direct else []), through]
        print()
        print(f"load average before the run: {load_before}; rounds: {args.rounds} (median shown)")
        print(f"gateway: {' '.join(gateway_command[1:])}  (balancer {args.balancer}, "
              f"{args.backends} backend(s), load: {load.__name__.removeprefix('run_')})")  # fmt: skip
        print(f"{'':32} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
        for result in results:
            figures = f"{result.rps:9.0f} {result.p50_ms:8.2f} {result.p99_ms:8.2f} {result.errors:7d}"
            print(f"{result.label:32} {figures}")
        summary: dict[str, float] = {
            "added_p50_unloaded_ms": round(quiet_gateway.p50_ms - quiet_direct.p50_ms, 3),
            "gateway_cpu_ms_per_request": round(cpu_used * 1000 / max(1, gateway_requests), 3),
        }
        if direct is not None:
            summary["throughput_ratio"] = round(through.rps / direct.rps, 3)
        print()
        if "throughput_ratio" in summary:
            ratio = summary["throughput_ratio"]
            print(f"through-gateway / direct throughput: {ratio:.2f}x  (target >= 0.45)")
        cpu = summary["gateway_cpu_ms_per_request"]
        print(f"gateway CPU per request:            {cpu:.3f} ms  (target <= 0.7)")
        print(f"median added, unloaded:             {summary['added_p50_unloaded_ms']:.3f} ms  (target <= 1.5)")
        if args.json:
            print(json.dumps({"results": [asdict(r) for r in results], **summary}, indent=2))
        return 0
    finally:
        for process in reversed(processes):
            stop(process)
        if embedded is not None:
            embedded.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
