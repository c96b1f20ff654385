"""Request parsing with limits, so that no input can make a service spend unbounded work or crash.

Python's JSON decoder recurses once per nesting level: a body nested 10,000 deep raises
RecursionError (a 500 before this parser). Real Bazaar documents are at most a few levels deep;
anything deeper than ``API_JSON_MAX_DEPTH`` (default 32) is refused with 400 naming the limit.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

DEFAULT_MAX_DEPTH = 32


def max_json_depth() -> int:
    return getattr(settings, "API_JSON_MAX_DEPTH", DEFAULT_MAX_DEPTH)


def json_depth_exceeds(document: Any, limit: int) -> bool:
    """True when containers nest deeper than ``limit`` (iterative: no recursion of our own)."""
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        node, depth = stack.pop()
        children: Iterable[Any]
        if isinstance(node, dict):
            children = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def too_deep_error(limit: int) -> ParseError:
    return ParseError(f"JSON body nested deeper than {limit} levels (the limit).")


class BoundedJSONParser(JSONParser):
    """DRF's JSON parser, refusing documents nested deeper than the configured limit."""

    def parse(self, stream: Any, media_type: Any = None, parser_context: Any = None) -> Any:
        limit = max_json_depth()
        try:
            document = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise too_deep_error(limit) from None
        if json_depth_exceeds(document, limit):
            raise too_deep_error(limit)
        return document
