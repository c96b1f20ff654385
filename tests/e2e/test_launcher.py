"""``make up`` as a user runs it: the launcher as a real process, its platform as real processes.

Each test states what a developer relies on: a crash is restarted while the rest serves; nothing
outlives the launcher, however it is stopped; a busy port or a platform already running is named
before anything starts; what an earlier run left behind is found, named and stopped; ``make
down`` stops a platform started in another shell. SQLite and an embedded Redis, as on a laptop.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from bazaar_devtools import prometheus as prom
from bazaar_devtools.e2e import wait_for
from bazaar_devtools.platform import PLATFORM_TAG, ROOT, free_port, read_state
from bazaar_devtools.watchdog import tagged_pids

BANNER = "Bazaar is up."
# Short discovery timings, as in the rest of the e2e suite, so that restarts are seen in seconds.
FAST = {"DISCOVERY_TTL_SECONDS": "4", "DISCOVERY_HEARTBEAT_SECONDS": "1", "DISCOVERY_CACHE_SECONDS": "0.5",
        "DISCOVERY_DRAIN_SECONDS": "0.2"}  # fmt: skip


class Launcher:
    """One ``python -m bazaar_devtools.up`` with its own var dir and ports; its output collected."""

    def __init__(self, var_dir: Path, gateway_port: int, port_base: int) -> None:
        self.var_dir = var_dir
        self.gateway_port = gateway_port
        self.env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", PLATFORM_TAG)}
        self.env |= FAST | {"BAZAAR_VAR_DIR": str(var_dir), "GATEWAY_PORT": str(gateway_port),
                            "BAZAAR_PORT_BASE": str(port_base), "PROMETHEUS_PORT": str(free_port())}  # fmt: skip
        self.lines: list[str] = []
        self.process: subprocess.Popen[str] | None = None

    @property
    def tag(self) -> str:
        return str(self.var_dir.resolve())

    @property
    def gateway(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    def run(self, *module: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run a launcher command (``up``, ``down``) to its end."""
        command = [sys.executable, "-m", f"bazaar_devtools.{module[0]}", *module[1:]]
        return subprocess.run(command, env=self.env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)

    def start(self) -> Launcher:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bazaar_devtools.up"], env=self.env, cwd=ROOT, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )  # fmt: skip
        threading.Thread(target=self._collect, daemon=True).start()
        wait_for(lambda: BANNER in self.lines or self.process.poll() is not None, 120, "the banner")
        assert BANNER in self.lines, "\n".join(self.lines[-40:])
        return self

    def _collect(self) -> None:
        assert self.process is not None
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def said(self, text: str) -> bool:
        return any(text in line for line in self.lines)

    def pid_of(self, name: str) -> int:
        state = read_state(self.var_dir)
        assert state is not None
        return next(proc["pid"] for proc in state["procs"] if proc["name"] == name)  # type: ignore[index,union-attr]

    def cleanup(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
        for pid in tagged_pids(self.tag):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture(scope="module")
def launcher(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Launcher]:
    running = Launcher(tmp_path_factory.mktemp("up"), free_port(), 21000 + os.getpid() % 200 * 50)
    try:
        yield running.start()
    finally:
        running.cleanup()


def test_a_killed_instance_and_a_killed_worker_are_restarted_while_the_rest_serves(launcher):
    # Given a running platform, when its catalog instance and its orders worker die
    catalog, worker = launcher.pid_of("catalog.1"), launcher.pid_of("orders-worker.1")
    os.kill(catalog, signal.SIGKILL)
    os.kill(worker, signal.SIGKILL)

    # Then the launcher keeps going and says so
    wait_for(lambda: launcher.said("catalog.1 (pid") and launcher.said("died: killed by SIGKILL"), 10, "a report")
    assert launcher.process.poll() is None
    assert requests.get(f"{launcher.gateway}/api/v1/auth/.well-known/jwks.json", timeout=5).status_code == 200
    # And both are started again, and the catalog serves through the gateway again
    wait_for(lambda: launcher.said("catalog.1 started again") and launcher.said("orders-worker.1 started again"),
             15, "both restarts")  # fmt: skip
    assert launcher.pid_of("catalog.1") != catalog
    assert alive(launcher.pid_of("orders-worker.1"))
    wait_for(lambda: requests.get(f"{launcher.gateway}/api/v1/catalog/products", timeout=5).status_code == 200,
             30, "the catalog to answer through the gateway again")  # fmt: skip


def test_a_second_launcher_names_the_running_platform_and_leaves_it_alone(launcher):
    second = launcher.run("up")

    assert second.returncode == 1
    assert f"already running from {launcher.var_dir}" in second.stderr
    assert f"launcher pid {launcher.process.pid}" in second.stderr
    assert requests.get(f"{launcher.gateway}/readyz", timeout=5).status_code == 200


def test_prometheus_scrapes_every_process_and_an_added_instance_and_loads_the_rules(launcher, prometheus_binary):
    state = read_state(launcher.var_dir)
    assert state is not None
    url = state["prometheus_url"]
    server = prom.Prometheus(launcher.var_dir / "prometheus", port=int(str(url).rsplit(":", 1)[1]))
    assert launcher.said(f"Prometheus: {url}  (alerts: {url}/alerts")

    def scraped() -> dict[str, tuple[str, str]]:
        return {t["labels"]["instance"]: (t["labels"]["process"], t["health"]) for t in server.active_targets()}

    # Every web and worker process the launcher started, each healthy.
    expected = {f"127.0.0.1:{p['metrics_port']}": (p["name"], "up") for p in state["procs"] if p["metrics_port"]}  # type: ignore[union-attr,index]
    assert len(expected) == 9  # 5 web processes, 4 workers
    seen: dict[str, tuple[str, str]] = {}

    def all_scraped() -> bool:
        seen.clear()
        seen.update(scraped())
        return seen == expected

    # Up to a minute: the first scrape of each target waits for file_sd's refresh (5 s) and the
    # scrape interval (5 s), and a loaded 2-core CI machine starts nine processes slowly.
    try:
        wait_for(all_scraped, 60, "every process to be scraped")
    except AssertionError as exc:
        raise AssertionError(f"{exc}: expected {expected}, Prometheus saw {seen}") from None
    assert {rule["name"] for group in server.rule_groups() for rule in group["rules"]} >= {
        "BazaarWebDown", "BazaarWorkerDown", "BazaarOutboxBacklogOld"}  # fmt: skip
    # The processes carry the link to it (the orders support dashboard shows it).
    orders = next(p for p in state["procs"] if p["name"] == "orders.1")  # type: ignore[union-attr,index]
    assert f"PROMETHEUS_URL={url}".encode() in Path(f"/proc/{orders['pid']}/environ").read_bytes()

    # `make instance` adds its instance to the targets.
    instance = subprocess.Popen(
        [sys.executable, "-m", "bazaar_devtools.instance", "catalog"], env=launcher.env, cwd=ROOT, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        assert instance.stdout is not None
        line = instance.stdout.readline()
        assert " is up at " in line, line + instance.stdout.read() if instance.poll() is not None else line
        # Present first as 'unknown' (listed, not yet scraped): wait for its first scrape.
        added = wait_for(
            lambda: (
                (new := {k: v for k, v in scraped().items() if k not in expected})
                and all(health == "up" for _name, health in new.values())
                and new
            ),
            30,
            "the new target to be scraped",
        )
        assert list(added.values()) == [("catalog.2", "up")]
    finally:
        instance.send_signal(signal.SIGINT)
        instance.wait(30)


def test_every_process_dies_with_a_sigkilled_launcher(launcher):
    tagged = tagged_pids(launcher.tag)
    assert len(tagged) >= 15  # redis, 5 servers with their granian workers, 4 Celery workers
    watchdog = read_state(launcher.var_dir)["watchdog_pid"]  # type: ignore[index]

    launcher.process.send_signal(signal.SIGKILL)

    wait_for(lambda: not [pid for pid in tagged if alive(pid)], 15, "every child of the launcher to be gone")
    assert tagged_pids(launcher.tag) == []
    wait_for(lambda: not alive(watchdog), 5, "the watchdog to finish its work and exit")


def test_leftovers_of_an_earlier_run_are_named_and_stopped_and_make_down_stops_it(launcher):
    # Given a process an earlier run left behind (as granian's worker is, when its server and the
    # launcher's watchdog were killed together), tagged with this platform's var dir
    orphan = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True,
        env=launcher.env | {PLATFORM_TAG: launcher.tag, "INSTANCE_ID": "catalog-orphan-1"},
    )  # fmt: skip
    again = Launcher(launcher.var_dir, launcher.gateway_port, 21000 + os.getpid() % 200 * 50)
    try:
        # When the platform is started again, it names the leftover, stops it and comes up
        again.start()
        assert again.said("left by an earlier run")
        assert again.said(f"pid {orphan.pid} (catalog-orphan-1:")
        assert orphan.wait(10) is not None

        # And `make down` from another shell stops the whole platform
        down = again.run("down")
        assert down.returncode == 0, down.stdout + down.stderr
        assert f"launcher pid {again.process.pid}" in down.stdout
        assert again.process.wait(5) == 0
        assert tagged_pids(again.tag) == []
        assert again.run("down").stdout.strip() == f"No platform is running from {again.var_dir}."
    finally:
        orphan.kill()
        again.cleanup()


def test_a_busy_gateway_port_is_named_before_anything_starts(tmp_path):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        launcher = Launcher(tmp_path, port, 21000 + os.getpid() % 200 * 50 + 25)

        result = launcher.run("up")

        assert result.returncode == 1
        assert f"port {port} (gateway.1) is held by pid {os.getpid()}" in result.stderr
        assert not list(tmp_path.glob("*.sqlite3")), "nothing was migrated"
        assert tagged_pids(launcher.tag) == []

        # A server started by hand there refuses too, instead of sharing the port (SO_REUSEPORT)
        serve = subprocess.run(
            [sys.executable, "-m", "bazaar_common.serve", "gateway", "--service", "gateway", "--port", str(port)],
            env=launcher.env, cwd=ROOT / "gateway", capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert serve.returncode == 1
        assert f"127.0.0.1:{port} is already in use" in serve.stderr
