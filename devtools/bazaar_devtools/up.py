"""``make up``: migrate, seed and run the whole platform in the foreground, supervised.

* Before anything starts: a platform still running from this checkout is named (and left alone);
  processes an earlier run left behind (its launcher gone) are named and stopped; a port the
  platform needs that something else holds — the gateway's included — is named with its holder.
* Every process's output is printed with its name in front (and kept in ``var/logs/<name>.log``).
* A process that dies is reported and started again after a back-off (1 s, doubling up to 30 s,
  back to 1 s once it has stayed up a minute); the others keep serving meanwhile.
* The banner prints once every web process answers ``/readyz``; if that takes over two minutes,
  what failed is printed instead (which process, how it ended, its last log lines).
* Every child dies with the launcher however it stops, SIGKILL included (``PR_SET_PDEATHSIG``,
  process groups and a watchdog, see :mod:`bazaar_devtools.watchdog`). Ctrl-C or ``make down``
  (from any shell) stops it in order.
* ``var/platform.json`` says what runs where (``make instance``, ``make down`` read it).
* When the ``prometheus`` binary is installed (Debian's package), a real Prometheus runs too, as
  one more supervised process: it scrapes every process's ``METRICS_PORT`` (file-based discovery
  in ``var/prometheus/targets/``, where ``make instance`` adds its own) and loads the chart's alert
  rules; see :mod:`bazaar_devtools.prometheus`. ``PROMETHEUS_PORT`` (default 9090; a free one
  when that is taken). Without the binary the banner says how to install it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
import time

import urllib3

from bazaar_common.demo import DEMO_ACCOUNTS, DEMO_PASSWORD
from bazaar_devtools import prometheus as prom
from bazaar_devtools.platform import (
    GATEWAY,
    SERVICES,
    STATE_FILE,
    Platform,
    PlatformConfig,
    Proc,
    _port_free,
    launcher_alive,
    read_state,
    tail,
)

READY_TIMEOUT_SECONDS = 120
BACKOFF_FIRST_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 30.0
STABLE_AFTER_SECONDS = 60.0  # a process that stayed up this long starts again from the first back-off


def banner(platform: Platform, prometheus: prom.Prometheus | None = None) -> str:
    gateway = f"http://127.0.0.1:{gateway_proc(platform).port}"
    if prometheus is not None:
        monitoring = f"{prometheus.url}  (alerts: {prometheus.url}/alerts, targets: {prometheus.url}/targets)"
    else:
        monitoring = f"not started: no prometheus binary ({prom.INSTALL_HINT})"
    lines = [
        "",
        "Bazaar is up.",
        f"  Gateway (the only public entry point): {gateway}",
        f"  API docs (offline):                    {gateway}/api/docs",
        f"  Gateway admin:                         {gateway}/admin/",
    ]
    for proc in platform.procs:
        if proc.kind == "web" and proc.service != GATEWAY.name:
            lines.append(f"  {proc.name:<10} admin: {proc.url}/admin/")
    lines += [
        f"  Redis: {platform.redis_url}" + ("  (embedded)" if platform.embedded_redis else ""),
        "  Databases: " + ("PostgreSQL" if platform.config.database_url else f"SQLite under {platform.var_dir}"),
        f"  Logs: {platform.log_dir}/<process>.log",
        f"  Prometheus: {monitoring}",
        "",
        f"  Demo accounts (password: {DEMO_PASSWORD}):",
        *(f"    {account.email:<24} roles: {', '.join(account.roles)}" for account in DEMO_ACCOUNTS),
        "",
        "  One more instance of a service:  make instance SERVICE=catalog",
        "  Load test (another shell):       make load",
        "  Stop everything:                 Ctrl-C here, or make down from any shell",
        "",
    ]
    return "\n".join(lines)


def gateway_proc(platform: Platform) -> Proc:
    return next(proc for proc in platform.procs if proc.service == GATEWAY.name)


def exit_reason(code: int | None) -> str:
    if code is not None and code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"


def local_prometheus(platform: Platform) -> prom.Prometheus | None:
    """The Prometheus ``make up`` runs beside the platform, or None when there is no binary."""
    if prom.binary() is None:
        return None
    wanted = int(os.environ.get("PROMETHEUS_PORT", "9090") or 0)
    port = wanted if wanted and _port_free(wanted) else 0  # 0: a free port (the banner names it)
    server = prom.Prometheus(platform.var_dir / "prometheus", port=port, tag=platform.tag)
    # Targets of an earlier run (a `make instance` killed with it) name processes that are gone.
    for stale in server.targets_dir.glob("*.json"):
        stale.unlink()
    return server


class Launcher:
    def __init__(self, platform: Platform, prometheus: prom.Prometheus | None = None) -> None:
        self.platform = platform
        self.prometheus = prometheus
        self.stopping = threading.Event()
        self.ready = threading.Event()
        self._print_lock = threading.Lock()
        self._due: dict[str, float] = {}  # process name -> when to start it again
        self._failures: dict[str, int] = {}  # process name -> quick deaths in a row

    # --- output ------------------------------------------------------------------------------
    def say(self, message: str) -> None:
        with self._print_lock, contextlib.suppress(OSError):
            print(message, flush=True)

    def echo(self, proc: Proc, line: bytes) -> None:
        with self._print_lock, contextlib.suppress(OSError):  # a closed terminal must not block the child
            sys.stdout.write(f"{proc.name:<18}| {line.decode(errors='replace').rstrip()}\n")
            sys.stdout.flush()

    # --- before anything starts --------------------------------------------------------------
    def preflight(self) -> str | None:
        """Why the platform cannot start here, or None. Stops what an earlier run left behind."""
        state = read_state(self.platform.var_dir)
        if launcher_alive(state):
            assert state is not None
            return (
                f"A platform is already running from {self.platform.var_dir} (launcher pid {state['launcher_pid']}, "
                f"gateway {state.get('gateway_url')}). Use it, or stop it first with `make down`."
            )
        leftovers = self.platform.leftovers()
        if leftovers:
            count = len(leftovers)
            self.say(f"Found {count} process(es) left by an earlier run (its launcher is gone); stopping them:")
            for description in leftovers:
                self.say(f"  {description}")
            self.platform.stop_leftovers()
        return None

    def ports_problem(self, procs: list[Proc]) -> str | None:
        busy = self.platform.busy_ports(procs)
        if busy:
            return "\n".join(
                [
                    "Cannot start: a port the platform needs is in use.",
                    *(f"  port {line}" for line in busy),
                    "Stop that process, or choose other ports, e.g. GATEWAY_PORT=8080 make up "
                    "(GATEWAY_PORT=0 picks any free port).",
                ]
            )
        return None

    # --- running -----------------------------------------------------------------------------
    def write_state(self) -> None:
        platform = self.platform
        state = {
            "launcher_pid": os.getpid(),
            "watchdog_pid": platform.watchdog.pid,
            "gateway_url": gateway_proc(platform).url,
            "redis_url": platform.redis_url,
            "embedded_redis_pid": platform.embedded_redis.pid if platform.embedded_redis else None,
            "broker_url": platform.broker_url,
            "database_url": platform.config.database_url,
            "var_dir": str(platform.var_dir),
            "prometheus_url": self.prometheus.url if self.prometheus else None,
            "procs": [proc.describe() for proc in platform.procs],
        }
        if self.prometheus:
            self.prometheus.write_targets("platform", platform.procs)
        path = platform.var_dir / STATE_FILE
        path.with_suffix(".tmp").write_text(json.dumps(state, indent=2))
        path.with_suffix(".tmp").replace(path)

    def supervise(self) -> None:
        """Restart, after a back-off, every process that died without being asked to."""
        now = time.monotonic()
        for proc in self.platform.procs:
            if proc.alive or proc.stopping or self.stopping.is_set():
                continue
            if proc.name not in self._due:
                # Its own children (granian's worker, say) would keep the port: they go first.
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)  # type: ignore[arg-type]
                quick = now - proc.started_at < STABLE_AFTER_SECONDS
                failures = self._failures.get(proc.name, 0) + 1 if quick else 1
                self._failures[proc.name] = failures
                delay = min(BACKOFF_MAX_SECONDS, BACKOFF_FIRST_SECONDS * 2 ** (failures - 1))
                self._due[proc.name] = now + delay
                self.say(
                    f"launcher          | {proc.name} (pid {proc.pid}) died: {exit_reason(proc.popen.returncode)}"  # type: ignore[union-attr]
                    f"; starting it again in {delay:.0f}s (restart #{proc.restarts + 1}); the rest keeps serving"
                )
            elif now >= self._due[proc.name]:
                del self._due[proc.name]
                proc.restarts += 1
                self.platform.spawn(proc)
                self.write_state()
                self.say(f"launcher          | {proc.name} started again (pid {proc.pid})")

    def announce_when_ready(self) -> None:
        http = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=0.5, read=2))
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        pending = [proc for proc in self.platform.procs if proc.kind == "web"]
        while pending and time.monotonic() < deadline and not self.stopping.is_set():
            pending = [proc for proc in pending if not answers_ready(http, proc)]
            time.sleep(0.25)
        if self.stopping.is_set():
            return
        if pending:
            lines = [f"\nNot ready after {READY_TIMEOUT_SECONDS}s:"]
            for proc in pending:
                state = "running but not answering /readyz" if proc.alive else "not running"
                lines.append(f"  {proc.name} ({state}, restarted {proc.restarts}x); last lines of {proc.log_path}:")
                lines += [f"    {line}" for line in tail(proc.log_path, 8).splitlines()]
            lines.append("The platform keeps running; fix the cause and it recovers, or Ctrl-C.")
            self.say("\n".join(lines))
        else:
            self.ready.set()
            self.say(banner(self.platform, self.prometheus))

    def request_stop(self, signum: int, frame: object) -> None:
        self.stopping.set()

    def run(self, procs: list[Proc]) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, self.request_stop)
        for proc in procs:
            self.platform.spawn(proc)
        self.write_state()
        threading.Thread(target=self.announce_when_ready, daemon=True).start()
        # Restarts happen here, in the main thread: a child's parent-death signal follows the
        # thread that started it, and this one lives as long as the platform.
        while not self.stopping.wait(0.25):
            self.supervise()
        self.say("launcher          | stopping every process…")
        self.platform.stop_all()


def answers_ready(http: urllib3.PoolManager, proc: Proc) -> bool:
    try:
        return proc.alive and http.request("GET", f"{proc.url}/readyz").status == 200
    except urllib3.exceptions.HTTPError:
        return False


def main() -> int:
    platform = Platform(PlatformConfig.from_env())
    prometheus = local_prometheus(platform)
    if prometheus is not None:
        # The orders support dashboard links to it.
        platform.config.extra_env["PROMETHEUS_URL"] = prometheus.url
    launcher = Launcher(platform, prometheus)
    problem = launcher.preflight()
    if problem:
        print(problem, file=sys.stderr, flush=True)
        return 1
    platform.start_watchdog()
    platform.echo = launcher.echo
    try:
        platform.start_redis_if_needed()
        procs = platform.initial_procs()  # services whose usual port is taken get a free one
        problem = launcher.ports_problem(procs)
        if problem:
            print(problem, file=sys.stderr, flush=True)
            return 1
        if prometheus is not None:
            procs.append(prometheus.proc())
        print("Migrating databases…", flush=True)
        platform.prepare_databases()
        seeded = platform.seed_demo_data()
        print(f"Demo data checked/seeded for: {', '.join(seeded) or 'none'}", flush=True)
        launcher.run(procs)
        return 0
    except RuntimeError as error:  # migrations or seeding failed: say which, and how
        print(f"\nCannot start: {error}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        platform.stop_all()
        if platform.embedded_redis:
            platform.embedded_redis.stop()
        (platform.var_dir / STATE_FILE).unlink(missing_ok=True)


if __name__ == "__main__":
    assert SERVICES  # the launcher knows every service
    sys.exit(main())
