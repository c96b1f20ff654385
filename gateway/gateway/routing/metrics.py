"""The gateway's edge metrics, kept cheap on the hot path.

* ``bazaar_gateway_requests_total{route,upstream,method,status_class}`` — every proxied request;
* ``bazaar_gateway_request_duration_seconds{route,upstream}`` — its latency at the edge;
* ``bazaar_gateway_rate_limited_total{rate_class}`` — requests refused with 429.

Labels are bounded: ``route`` is the route's prefix from the routing table (never the request's
path), ``method`` one of the HTTP methods (else ``OTHER``), ``status_class`` ``2xx``…``5xx``.
Upstream attempts, retries and breaker states are counted by the shared client
(:mod:`bazaar_common.http`), instances in rotation by the health monitor.

Per request this costs two dictionary look-ups and two sample writes: the labelled children are
created once per label combination and kept.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import Counter, Histogram

REQUESTS = Counter(
    "bazaar_gateway_requests_total",
    "Requests proxied by the gateway.",
    ["route", "upstream", "method", "status_class"],
)
DURATION = Histogram(
    "bazaar_gateway_request_duration_seconds",
    "Time from a proxied request's arrival to its answer.",
    ["route", "upstream"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
RATE_LIMITED = Counter("bazaar_gateway_rate_limited_total", "Requests refused by the rate limit.", ["rate_class"])
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_STATUS_CLASSES = {1: "1xx", 2: "2xx", 3: "3xx", 4: "4xx", 5: "5xx"}

_counters: dict[tuple[str, str, str, int], Any] = {}
_histograms: dict[tuple[str, str], Any] = {}


def record_request(route: str, service: str, method: str, status: int, seconds: float) -> None:
    if method not in METHODS:
        method = "OTHER"  # a client may send any method name: it must not make a new series
    key = (route, service, method, status)
    counter = _counters.get(key)
    if counter is None:
        counter = REQUESTS.labels(route, service, method, _STATUS_CLASSES.get(status // 100, "5xx"))
        _counters[key] = counter
    counter.inc()
    histogram = _histograms.get((route, service))
    if histogram is None:
        histogram = _histograms[(route, service)] = DURATION.labels(route, service)
    histogram.observe(seconds)


def record_rate_limited(rate_class: str) -> None:
    RATE_LIMITED.labels(rate_class).inc()
