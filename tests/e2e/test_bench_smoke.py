"""A smoke run of ``make bench`` on the e2e platform: every figure is produced (not its value —
performance targets are met in the benchmark, never in a timed test)."""

from __future__ import annotations

import argparse

from bazaar_devtools.bench import Bench, run, summary, table, write_docs
from bazaar_devtools.e2e import E2EPlatform

BENCHES = ("read: product list", "read: product detail", "checkout", "sign-in")


def test_bench_produces_every_figure_and_writes_the_tables(platform: E2EPlatform, tmp_path):
    args = argparse.Namespace(
        read_seconds=1, rounds=1, checkout_seconds=1.5, checkout_direct_seconds=1, checkout_workers=2,
        signin_seconds=1, signin_workers=2,
    )  # fmt: skip

    figures = run(Bench(platform.platform, connections=4, idle_seconds=1), args)

    assert [(f.bench, f.path) for f in figures] == [(b, p) for b in BENCHES for p in ("direct", "gateway")]
    for figure in figures:
        assert figure.requests > 0, figure
        assert figure.rps > 0, figure
        assert figure.p99_ms >= figure.p50_ms > 0, figure
        assert figure.cpu_ms > 0, figure
    for figure in figures:
        if figure.bench.startswith("read") and figure.path == "gateway":
            assert figure.extra["gateway_cpu_ms"] > 0
        if figure.bench == "checkout":
            assert figure.extra["stranded"] == 0
            assert figure.extra["reserved_p99_ms"] >= figure.extra["reserved_p50_ms"] > 0
            assert figure.extra["work_per_order"]["redis_commands"] > 0
            assert figure.extra["idle_cpu_ms_per_second"] > 0  # heartbeats and polls never stop
            assert 0 <= figure.extra["cpu_ms_per_order_net_of_idle"] <= figure.cpu_ms
    checkout = figures[5]
    assert checkout.extra["stock_agrees"] is True
    assert checkout.extra["stock_change"] == checkout.extra["reserved_units"]
    facts = summary(figures)
    assert set(facts) == set(BENCHES)
    assert all(facts[bench]["ratio"] > 0 for bench in BENCHES)

    write_docs(figures, "smoke run", tmp_path)

    results = (tmp_path / "benchmarks.md").read_text()
    assert table(figures) in results
    capacity = (tmp_path / "capacity.md").read_text()
    assert "300 %" in capacity
    assert capacity.count("| ") >= 5 * 5
