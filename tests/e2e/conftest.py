"""The real platform for end-to-end tests; see :mod:`bazaar_devtools.e2e`."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from bazaar_devtools import prometheus
from bazaar_devtools.e2e import E2EPlatform, e2e_broker, e2e_config
from bazaar_devtools.otlp import OtlpReceiver
from bazaar_devtools.platform import Platform, drop_postgres_database


@pytest.fixture(scope="session")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[E2EPlatform]:
    config, databases = e2e_config(tmp_path_factory.mktemp("platform"))
    # Every process exports its spans, as to a collector, to a receiver in this test process
    # (batches every 0.2 s instead of 5 s, so a test sees a request's spans within a second).
    traces = OtlpReceiver().start()
    config.extra_env |= {"OTEL_EXPORTER_OTLP_ENDPOINT": traces.url, "OTEL_BSP_SCHEDULE_DELAY": "200"}
    running = Platform(config)
    # Whatever happens to this test run (even SIGKILL), its platform does not outlive it.
    running.start_watchdog()
    broker = e2e_broker(config.var_dir / "broker", tag=running.tag)
    config.broker_url = broker.url
    running.broker_url = broker.url
    try:
        running.start_redis_if_needed()
        running.prepare_databases()
        running.seed_demo_data()
        running.start_all()
        yield E2EPlatform(running, broker, traces=traces)
    finally:
        running.shutdown()
        broker.close()
        traces.stop()
        for url in databases:
            drop_postgres_database(url)


@pytest.fixture
def customer(platform: E2EPlatform) -> tuple[str, str]:
    return platform.register_customer()


@pytest.fixture(scope="session")
def prometheus_binary() -> str:
    """The prometheus binary. CI installs it (.ci/run): there its absence fails the test; a
    machine without it is told how to install it."""
    found = prometheus.binary()
    if found is None:
        message = f"no prometheus binary here: {prometheus.INSTALL_HINT}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(f"{message}; CI runs these tests")
    return found
