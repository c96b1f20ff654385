"""Issue 7 through real processes: scale out, kill -9, rolling restart, whole service down, slow
upstream. Every request goes through the real gateway to real service instances."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest
import requests

from bazaar_common.demo import DEMO_ADMIN
from bazaar_devtools.e2e import wait_for

PRODUCTS = "/api/v1/catalog/products"


class SteadyGets:
    """A steady stream of GETs through the gateway in a background thread; records every status."""

    def __init__(self, url: str, path: str = PRODUCTS, interval: float = 0.02) -> None:
        self.url = url + path
        self.interval = interval
        self.statuses: list[int] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        session = requests.Session()
        while not self._stop.is_set():
            try:
                response = session.get(self.url, timeout=10)
                self.statuses.append(response.status_code)
                if response.status_code != 200:
                    self.failures.append(f"{response.status_code} {response.text[:200]}")
            except requests.RequestException as exc:
                self.failures.append(repr(exc))
            time.sleep(self.interval)

    def __enter__(self) -> SteadyGets:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(15)


def _admin_token(platform) -> str:
    return platform.token(DEMO_ADMIN.email)


def _requests_per_instance(platform, token: str, service: str) -> dict[str, int]:
    overview = platform.api("GET", "/api/v1/gateway/services", token).json()
    (entry,) = [s for s in overview["services"] if s["name"] == service]
    return {instance["instance_id"]: instance["requests"] for instance in entry["instances"]}


def _registered_ids(platform, service: str) -> set[str]:
    return {instance.instance_id for instance in platform.registry.lookup(service)}


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return found


@pytest.fixture
def catalog_pair(platform):
    """Two catalog instances registered; afterwards one healthy instance of everything again."""
    platform.ensure_one_instance_each()
    while len(platform.instances("catalog")) < 2:
        platform.start_instance("catalog")
    platform.wait_registered("catalog", 2)
    yield platform.instances("catalog")
    for proc in platform.instances("catalog")[1:]:
        platform.stop_instance(proc)
    platform.ensure_one_instance_each()


def test_scale_out_new_instance_gets_traffic_within_seconds(platform):
    platform.ensure_one_instance_each()
    token = _admin_token(platform)
    (first,) = platform.instances("catalog")[:1]
    second = platform.start_instance("catalog")
    try:

        def both_served() -> bool:
            for _ in range(10):
                assert platform.api("GET", PRODUCTS).status_code == 200
            counts = _requests_per_instance(platform, token, "catalog")
            return counts.get(first.instance_id, 0) > 0 and counts.get(second.instance_id, 0) > 0

        wait_for(both_served, 10, "both catalog instances receiving traffic")
    finally:
        platform.stop_instance(second)


def test_kill_9_of_one_instance_loses_no_get(platform, catalog_pair):
    victim = catalog_pair[1]
    with SteadyGets(platform.gateway_url) as stream:
        time.sleep(1.0)
        platform.kill_instance(victim)
        time.sleep(4.0)

    assert stream.failures == []
    assert len(stream.statuses) > 50
    wait_for(
        lambda: victim.instance_id not in _registered_ids(platform, "catalog"),
        5,
        "the killed instance to leave the registry",
    )


def test_rolling_restart_loses_no_request(platform, catalog_pair):
    with SteadyGets(platform.gateway_url) as stream:
        for old in list(catalog_pair):
            replacement = platform.start_instance("catalog")
            platform.wait_registered("catalog", 3)
            platform.stop_instance(old)  # SIGTERM: deregister, drain, exit
            wait_for(
                lambda old=old: old.instance_id not in _registered_ids(platform, "catalog"),
                10,
                "the stopped instance to leave the registry",
            )
            assert replacement.alive
        time.sleep(1.0)

    assert stream.failures == []
    assert len(stream.statuses) > 50


def test_whole_service_down_fails_fast_with_503_and_recovers_without_restart(platform):
    platform.ensure_one_instance_each()
    for proc in platform.instances("catalog"):
        platform.kill_instance(proc)
    try:
        timings = []
        answers = []
        for _ in range(15):
            started = time.monotonic()
            answers.append(platform.api("GET", PRODUCTS))
            timings.append(time.monotonic() - started)
        for response in answers:
            assert response.status_code == 503
            assert response.headers["Content-Type"] == "application/problem+json"
            assert int(response.headers["Retry-After"]) >= 1
            assert response.json()["status"] == 503
        assert max(timings[-10:]) < 1.0  # fast: no full timeout per request

        platform.start_instance("catalog")
        wait_for(lambda: platform.api("GET", PRODUCTS).status_code == 200, 15, "catalog to answer again")
    finally:
        platform.ensure_one_instance_each()


def test_slow_upstream_answers_504_at_the_route_timeout_while_other_routes_serve(platform):
    platform.ensure_one_instance_each()
    (only,) = platform.instances("catalog")
    frozen = _children(only.popen.pid)  # granian's workers; the main process keeps heartbeating
    assert frozen
    for pid in frozen:
        os.kill(pid, signal.SIGSTOP)
    try:
        other_route: list[int] = []

        def meanwhile() -> None:
            time.sleep(0.5)
            for _ in range(5):
                other_route.append(platform.api("GET", "/api/v1/auth/.well-known/jwks.json", timeout=5).status_code)

        side = threading.Thread(target=meanwhile)
        side.start()
        started = time.monotonic()
        response = platform.api("GET", PRODUCTS, timeout=20)
        elapsed = time.monotonic() - started
        side.join()

        assert response.status_code == 504
        assert response.headers["Content-Type"] == "application/problem+json"
        assert response.json()["status"] == 504
        assert 2.5 <= elapsed < 6  # the catalog route's read timeout is 3 s
        assert other_route == [200] * 5
    finally:
        for pid in frozen:
            os.kill(pid, signal.SIGCONT)
        platform.kill_instance(only)
        platform.ensure_one_instance_each()
