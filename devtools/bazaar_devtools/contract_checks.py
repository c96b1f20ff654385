"""Checks that a service and its callers agree on an internal HTTP contract (``bazaar_common.contracts.http``).

Used by each service's tests against its real endpoints (Django's test client, the real views):

* :func:`answer_is_the_contract`: what the endpoint answered parses with the class its callers
  parse it with, and nothing is lost on the way: the parsed document, dumped again, is exactly the
  answer (no field the contract does not name, every value in the contract's own format). A
  stand-in built from the same class therefore answers documents of the same shape as the real
  endpoint does.
* :func:`internal_routes`: every ``/internal/`` route a service serves, as a path template, to
  compare with the endpoints the contract lists (a new internal endpoint without a contract fails).
"""

from __future__ import annotations

import re
from typing import Any

from django.urls import URLPattern, URLResolver, get_resolver

from bazaar_common.contracts.http import INTERNAL_ENDPOINTS, Body, Endpoint


def answer_is_the_contract(endpoint: Endpoint, response: Any) -> Body | None:
    """``response`` (a test client's answer from ``endpoint``) as its contract class; fails unless
    the answer is a 2xx that is exactly a document of that class."""
    assert 200 <= response.status_code < 300, (response.status_code, response.content[:500])
    if endpoint.answer is None:
        assert response.content == b"", response.content[:500]
        return None
    parsed = endpoint.answer.parse(response.content)
    assert parsed.to_json() == response.json(), "the answer has fields or formats its contract does not know"
    return parsed


def _walk(patterns: list[Any], prefix: str) -> list[str]:
    paths: list[str] = []
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            paths += _walk(pattern.url_patterns, route)
        elif isinstance(pattern, URLPattern):
            paths.append(route)
    return paths


def internal_routes(urlconf: str | None = None) -> set[str]:
    """The service's ``/internal/`` routes as templates: ``<uuid:user_id>`` reads ``{user_id}``."""
    routes = _walk(get_resolver(urlconf).url_patterns, "/")
    return {re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route) for route in routes if route.startswith("/internal/")}


def contract_paths(service: str) -> set[str]:
    return {endpoint.path for endpoint in INTERNAL_ENDPOINTS if endpoint.service == service}
