"""A real Prometheus for the platform run on this machine (``make up``, the end-to-end tests).

The ``prometheus`` binary comes from Debian's ``prometheus`` package (``apt-get install
prometheus``; the same package brings ``promtool``, which ``make test`` uses for the alert rules).
Set ``PROMETHEUS_BIN`` to use another binary.

What it is given:

* one scrape job, ``bazaar``, whose targets are the ``METRICS_PORT`` of every web and worker
  process, read from JSON files in ``<directory>/targets/`` (file-based service discovery: the
  launcher writes one file for the processes it started, ``make instance`` one more for the
  instance it adds and removes it when the instance stops; Prometheus watches the folder, so a
  new instance is scraped within a scrape interval, with no reload). Each target carries the
  labels the chart's PodMonitor gives a pod: ``service`` and ``role`` (``web`` | ``worker``), plus
  ``process`` (the launcher's name for it, e.g. ``catalog.2``);
* the chart's alert and recording rules, ``charts/bazaar/files/alerts/*.yaml`` (what the
  PrometheusRule ships), so ``/alerts`` shows the same alerts a cluster would raise.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from bazaar_devtools.platform import PLATFORM_TAG, ROOT, Proc, die_with_parent, free_port

RULES_DIR = ROOT / "charts" / "bazaar" / "files" / "alerts"
INSTALL_HINT = "apt-get install prometheus (Debian's package; or PROMETHEUS_BIN=/path/to/prometheus)"


def binary() -> str | None:
    """The prometheus binary to run, or None when this machine has none."""
    configured = os.environ.get("PROMETHEUS_BIN", "").strip()
    if configured:
        return configured if Path(configured).exists() else None
    return shutil.which("prometheus")


def rule_files() -> list[Path]:
    return sorted(RULES_DIR.glob("*.yaml"))


def target_groups(procs: Iterable[Proc]) -> list[dict[str, Any]]:
    """File-SD target groups for every process that serves metrics (one group per process)."""
    return [
        {
            "targets": [f"127.0.0.1:{proc.metrics_port}"],
            "labels": {"service": proc.service, "role": proc.kind, "process": proc.name},
        }
        for proc in procs
        if proc.metrics_port and proc.kind in ("web", "worker")
    ]


def write_json_atomically(path: Path, content: object) -> None:
    """Prometheus re-reads a targets file when it changes: it must never see half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(content, indent=2))
    temporary.replace(path)


@dataclass
class Prometheus:
    """One Prometheus server: its config, data and targets under ``directory``."""

    directory: Path
    port: int = 0  # 0: any free port
    scrape_interval: str = "5s"
    evaluation_interval: str = "5s"
    tag: str | None = None  # the platform's tag (make down and the watchdog find it by it)
    retention: str = "1d"
    popen: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        self.port = self.port or free_port()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def targets_dir(self) -> Path:
        return self.directory / "targets"

    @property
    def config_path(self) -> Path:
        return self.directory / "prometheus.yml"

    def config(self) -> dict[str, Any]:
        return {
            "global": {
                "scrape_interval": self.scrape_interval,
                "scrape_timeout": self.scrape_interval,
                "evaluation_interval": self.evaluation_interval,
            },
            "rule_files": [str(path) for path in rule_files()],
            "scrape_configs": [
                {
                    "job_name": "bazaar",
                    "file_sd_configs": [{"files": [str(self.targets_dir / "*.json")], "refresh_interval": "5s"}],
                }
            ],
        }

    def write_targets(self, name: str, procs: Iterable[Proc]) -> Path:
        """Write (or replace) the targets file ``name``.json with these processes."""
        path = self.targets_dir / f"{name}.json"
        write_json_atomically(path, target_groups(procs))
        return path

    def prepare(self) -> list[str]:
        """Write the config; return the command that runs the server."""
        executable = binary()
        if executable is None:
            raise FileNotFoundError(f"no prometheus binary: {INSTALL_HINT}")
        self.targets_dir.mkdir(parents=True, exist_ok=True)
        # JSON is YAML: no YAML writer needed.
        self.config_path.write_text(json.dumps(self.config(), indent=2))
        return [
            executable,
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self.directory / 'data'}",
            f"--storage.tsdb.retention.time={self.retention}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--web.enable-lifecycle",
            "--log.level=warn",
        ]

    def proc(self) -> Proc:
        """The server as one of the platform's processes (the launcher supervises and logs it)."""
        env = dict(os.environ) | ({PLATFORM_TAG: self.tag} if self.tag else {})
        return Proc(name="prometheus", service="prometheus", kind="monitor", command=self.prepare(),
                    env=env, cwd=self.directory, port=self.port)  # fmt: skip

    def start(self, timeout: float = 30) -> Prometheus:
        """Start the server as a child of this process (dying with it) and wait until it is ready."""
        command = self.prepare()
        env = dict(os.environ) | ({PLATFORM_TAG: self.tag} if self.tag else {})
        log = (self.directory / "prometheus.log").open("ab")
        self.popen = subprocess.Popen(
            command, cwd=self.directory, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, preexec_fn=die_with_parent,
        )  # fmt: skip
        log.close()
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen is not None and self.popen.poll() is not None:
                raise RuntimeError(f"prometheus exited ({self.popen.returncode}):\n{self.log_tail()}")
            try:
                if requests.get(f"{self.url}/-/ready", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"prometheus not ready after {timeout}s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 20) -> str:
        path = self.directory / "prometheus.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def stop(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        self.popen = None

    # --- the HTTP API ------------------------------------------------------------------------
    def _get(self, path: str, **params: str) -> Any:
        response = requests.get(f"{self.url}{path}", params=params, timeout=10)
        body = response.json()
        if response.status_code != 200 or body.get("status") != "success":
            raise PrometheusError(f"{path} {params}: {response.status_code} {body.get('error', body)}")
        return body["data"]

    def query(self, expr: str) -> list[tuple[dict[str, str], float]]:
        """An instant query: (labels, value) per series of the result vector."""
        data = self._get("/api/v1/query", query=expr)
        if data["resultType"] == "scalar":
            return [({}, float(data["result"][1]))]
        return [(series["metric"], float(series["value"][1])) for series in data["result"]]

    def value(self, expr: str) -> float | None:
        """The one value of a query whose result is a single series (None: no series)."""
        result = self.query(expr)
        if len(result) > 1:
            raise PrometheusError(f"{expr} returned {len(result)} series, expected at most one")
        return result[0][1] if result else None

    def alerts(self) -> list[dict[str, Any]]:
        """Alerts pending or firing now: each with ``labels``, ``state``, ``activeAt``."""
        return self._get("/api/v1/alerts")["alerts"]

    def active_targets(self) -> list[dict[str, Any]]:
        return self._get("/api/v1/targets", state="active")["activeTargets"]

    def rule_groups(self) -> list[dict[str, Any]]:
        return self._get("/api/v1/rules")["groups"]


class PrometheusError(RuntimeError):
    pass
