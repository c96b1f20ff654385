"""The worker liveness probe: a real Celery worker process, its own redis-server as the broker.

Invariant: the probe Kubernetes runs (bazaar_common.celery.HEARTBEAT_PROBE) passes while the worker
consumes, and fails within seconds once its consumer has lost the broker — so the kubelet restarts
a worker that would otherwise sit there consuming nothing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bazaar_common.celery import HEARTBEAT_PROBE
from bazaar_devtools.platform import ROOT, EmbeddedRedis


def probe(env: dict[str, str]) -> bool:
    return subprocess.run(["sh", "-c", HEARTBEAT_PROBE], env=env).returncode == 0


def wait_for(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


@pytest.fixture
def broker(tmp_path: Path):
    redis = EmbeddedRedis(directory=tmp_path / "redis").start()
    yield redis
    redis.stop()


def test_the_probe_passes_while_consuming_and_fails_once_the_broker_is_gone(tmp_path: Path, broker) -> None:
    heartbeat = tmp_path / "heartbeat"
    env = dict(os.environ) | {
        "DEBUG": "1",
        "BAZAAR_VAR_DIR": str(tmp_path),
        "REDIS_URL": broker.url,
        "CELERY_BROKER_URL": broker.url,
        "OUTBOX_RELAY": "0",
        "CELERY_HEARTBEAT_FILE": str(heartbeat),
        "CELERY_HEARTBEAT_SECONDS": "0.5",
        "CELERY_HEARTBEAT_MAX_AGE_SECONDS": "3",
    }
    env.pop("DATABASE_URL", None)
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "catalog_service.config",
            "worker",
            "-Q",
            "liveness-test",
            "--concurrency",
            "1",
            "--without-mingle",
            "--without-gossip",
            "--loglevel",
            "WARNING",
        ],
        cwd=ROOT / "catalog_service",
        env=env,
        start_new_session=True,
    )
    try:
        assert wait_for(heartbeat.exists, 30), "the worker never wrote its heartbeat"
        first = heartbeat.stat().st_mtime
        assert wait_for(lambda: heartbeat.exists() and heartbeat.stat().st_mtime > first, 5), "heartbeat not refreshed"
        assert probe(env)

        broker.stop()

        assert wait_for(lambda: not probe(env), 10), "the probe still passes without a broker"
        assert worker.poll() is None, "the worker exited by itself: the probe is what must notice"
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(10)


def test_the_probe_fails_when_the_heartbeat_is_stale(tmp_path: Path) -> None:
    heartbeat = tmp_path / "heartbeat"
    env = {
        "PATH": os.environ["PATH"],
        "CELERY_HEARTBEAT_FILE": str(heartbeat),
        "CELERY_HEARTBEAT_MAX_AGE_SECONDS": "60",
    }
    assert not probe(env)  # no file: never connected
    heartbeat.touch()
    assert probe(env)
    os.utime(heartbeat, (time.time() - 120, time.time() - 120))
    assert not probe(env)  # a stuck event loop stops refreshing it
