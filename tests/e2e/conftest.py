"""The real platform for end-to-end tests; see :mod:`bazaar_devtools.e2e`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from bazaar_devtools.e2e import E2EPlatform, e2e_broker, e2e_config
from bazaar_devtools.platform import Platform, drop_postgres_database


@pytest.fixture(scope="session")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[E2EPlatform]:
    config, databases = e2e_config(tmp_path_factory.mktemp("platform"))
    if config.redis_url:
        # A dedicated Redis database for this run: start from a clean registry and caches.
        redis.Redis.from_url(config.redis_url).flushdb()
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
        yield E2EPlatform(running, broker)
    finally:
        running.shutdown()
        broker.close()
        for url in databases:
            drop_postgres_database(url)


@pytest.fixture
def customer(platform: E2EPlatform) -> tuple[str, str]:
    return platform.register_customer()
