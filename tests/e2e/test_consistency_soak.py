"""The soak (``make soak``, not part of ``make test``): five minutes of checkouts and payments
while a random web instance or worker is SIGKILLed every minute, then the same invariants as the
fault tests, read from the databases. Prints its figures (orders, answers, kills)."""

from __future__ import annotations

import random
import time

import pytest
from test_consistency_faults import _product, assert_settles_consistent, tokens  # noqa: F401

from bazaar_devtools.consistency import ShopperLoad
from bazaar_devtools.faults import kill_tree

pytestmark = pytest.mark.soak
SOAK_SECONDS = 300
KILL_EVERY_SECONDS = 60
VICTIMS = (("catalog", "web"), ("orders", "web"), ("catalog", "worker"), ("orders", "worker"))


@pytest.mark.timeout(SOAK_SECONDS + 300)
def test_five_minutes_with_a_random_instance_or_worker_killed_every_minute(platform, tokens):  # noqa: F811
    product_id = _product(platform, tokens, stock=100_000)
    extras = [platform.start_instance("catalog"), platform.start_instance("orders")]
    shoppers = [token for email, token in tokens.items() if "merchant" not in email]
    by_token = {token: email for email, token in tokens.items()}

    def renew(token: str) -> str:  # the run outlives an access token (and its successor)
        email = by_token[token]  # threads may share a token: each renews it for itself
        fresh = platform.token(email)
        by_token[fresh] = email
        return fresh

    load = ShopperLoad(api=platform.api, tokens=shoppers, product_id=product_id, threads=4, renew=renew).start()
    kills: list[str] = []
    rng = random.Random(10)
    started = time.monotonic()
    try:
        while time.monotonic() - started < SOAK_SECONDS:
            time.sleep(KILL_EVERY_SECONDS)
            service, kind = rng.choice(VICTIMS)
            procs = platform.instances(service) if kind == "web" else platform.workers(service)
            victim = rng.choice(procs)
            kill_tree(victim.popen.pid)
            kills.append(f"{victim.name} at {time.monotonic() - started:.0f}s")
            time.sleep(1)
            platform.ensure_one_instance_each()
            if kind == "web" and len(platform.instances(service)) < 2:
                extras.append(platform.start_instance(service))
    finally:
        load.stop()
        platform.ensure_one_instance_each()
    settle_started = time.monotonic()
    print(f"\nsoak: {len(load.order_ids)} orders in {SOAK_SECONDS}s, answers {dict(load.answers)}, kills {kills}")
    assert_settles_consistent(platform, load, product_id, timeout=120)
    print(f"soak: consistent {time.monotonic() - settle_started:.0f}s after the load stopped")
    for proc in extras:
        if proc.alive:
            platform.stop_instance(proc)
