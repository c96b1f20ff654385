"""The Grafana dashboards the chart ships are the ones ``bazaar_devtools.dashboards`` makes.

Their queries are checked against a real Prometheus and the platform's metrics in the e2e suite
(tests/e2e/test_prometheus_e2e.py, test_observability_e2e.py); here: the files are up to date,
there is one per service, and each service's dashboard looks at that service only.
"""

from __future__ import annotations

import json
import re

from bazaar_devtools import dashboards
from bazaar_devtools.platform import SERVICES


def test_the_committed_dashboards_are_what_the_code_makes():
    assert dashboards.differences() == []


def test_there_is_an_overview_an_edge_a_saga_and_one_dashboard_per_service():
    files = {path.name: json.loads(path.read_text()) for path in dashboards.DIRECTORY.glob("*.json")}

    assert set(files) == {"platform-overview.json", "gateway-edge.json", "saga-and-queues.json",
                          *(f"service-{spec.name}.json" for spec in SERVICES)}  # fmt: skip
    uids = [content["uid"] for content in files.values()]
    assert len(set(uids)) == len(uids)
    for content in files.values():
        ids = [panel["id"] for panel in content["panels"]]
        assert ids == list(range(1, len(ids) + 1))
        assert all(panel["targets"] for panel in content["panels"])


def test_a_service_dashboard_selects_its_own_service_only():
    for spec in SERVICES:
        content = dashboards.service_dashboard(spec.name)
        exprs = [target["expr"] for panel in content["panels"] for target in panel["targets"]]
        named = {value for expr in exprs for value in re.findall(r'\b(?:service|upstream)="([^"]*)"', expr)}
        assert named == {spec.name}, spec.name
        scoped = [expr for expr in exprs if f'"{spec.name}"' in expr]
        assert len(scoped) >= 15, spec.name  # the shared panels are all about this service
