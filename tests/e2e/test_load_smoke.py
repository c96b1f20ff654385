"""A short run of ``make load`` (devtools/locustfile.py) against the e2e platform: the load test
works out of the box — no failed request — and walks every step of the customer journey."""

from __future__ import annotations

import csv
import subprocess
import sys

from bazaar_devtools.platform import ROOT

JOURNEY_STEPS = ("browse", "search", "cart", "checkout", "reserved", "pay", "cancel", "orders", "profile", "export",
                 "restock")  # fmt: skip


def test_make_load_walks_the_whole_journey_with_no_failure(platform, tmp_path):
    locust = [sys.executable, "-m", "locust", "-f", str(ROOT / "devtools" / "locustfile.py"), "--headless",
              "--host", platform.gateway_url, "--users", "9", "--spawn-rate", "9", "--run-time", "12s",
              "--only-summary", "--csv", str(tmp_path / "load")]  # fmt: skip

    result = subprocess.run(locust, cwd=ROOT, capture_output=True, text=True, timeout=90)

    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    with open(tmp_path / "load_stats.csv") as stats:
        rows = {row["Name"]: row for row in csv.DictReader(stats)}
    assert rows["Aggregated"]["Failure Count"] == "0"
    expected = {"products: list", "products: search", "products: detail", "cart: add item", "cart: view",
                "orders: checkout", "orders: created → reserved", "orders: pay", "orders: cancel", "orders: list",
                "profile: view", "profile: export", "merchant: restock", "auth: register"}  # fmt: skip
    assert expected <= {name for name, row in rows.items() if int(row["Request Count"]) > 0}
    summary = next(line for line in output.splitlines() if line.strip().startswith("steps:"))
    ran = dict(item.strip().rsplit(" ", 1) for item in summary.split(":", 1)[1].split(","))
    assert set(ran) == set(JOURNEY_STEPS)
    assert all(int(times) > 0 for times in ran.values()), summary
