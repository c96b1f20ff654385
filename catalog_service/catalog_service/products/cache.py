"""Response caching for the public catalog, with version counters for invalidation.

Keys embed versions instead of being deleted:

* a global catalog version, bumped by any change that can alter a list (a product, its stock, a
  category, a merchant);
* a version per product, bumped when that product or its stock changes (its detail page);
* a taxonomy version, bumped when categories or merchants change (they appear in details).

A bump happens after the changing transaction commits; a reader takes the versions *before* it
reads the database, so whatever it caches is filed under versions that were current when it read.
Version counters start at a time-based value, so a counter evicted from Redis never comes back to a
number an old cached entry is filed under.

Redis being away never breaks a read: the cache is skipped and the database answers.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction

logger = logging.getLogger(__name__)

CATALOG_VERSION_KEY = "catalog:v:all"
TAXONOMY_VERSION_KEY = "catalog:v:taxonomy"


def product_version_key(product_id: int) -> str:
    return f"catalog:v:product:{product_id}"


@dataclass(frozen=True)
class CachedBody:
    body: bytes
    etag: str


def _versions(*keys: str) -> list[int] | None:
    """The current value of each version counter, in one round trip when they all exist."""
    try:
        found = cache.get_many(keys)
        for key in keys:
            if found.get(key) is None:
                cache.add(key, time.time_ns(), timeout=None)
                found[key] = cache.get(key)
        return [found[key] for key in keys]
    except Exception as exc:  # Redis away: serve from the database
        logger.warning("catalog cache unavailable", extra={"error": str(exc)})
        return None


def _version(key: str) -> int | None:
    versions = _versions(key)
    return None if versions is None else versions[0]


def _bump(key: str) -> None:
    try:
        cache.incr(key)
    except ValueError:  # the counter is missing (never read, or evicted): start a fresh one
        cache.add(key, time.time_ns(), timeout=None)
    except Exception as exc:
        logger.warning("catalog cache version bump failed", extra={"key": key, "error": str(exc)})


def _bump_now(product_ids: tuple[int, ...], taxonomy: bool) -> None:
    _bump(CATALOG_VERSION_KEY)
    if taxonomy:
        _bump(TAXONOMY_VERSION_KEY)
    for product_id in product_ids:
        _bump(product_version_key(product_id))


def catalog_changed(*, product_ids: Iterable[int] = (), taxonomy: bool = False) -> None:
    """Invalidate cached responses once the current transaction commits."""
    ids = tuple(sorted(set(product_ids)))
    transaction.on_commit(lambda: _bump_now(ids, taxonomy))


def list_cache_key(params: Any) -> str | None:
    """The key of a list page. ``params`` are the request's raw query parameters (name → values,
    sorted): the key is known before validation, so a hit costs no validation at all. Only valid
    queries are ever stored, and any change that could make one invalid (a category or merchant
    gone) bumps the catalog version the key embeds."""
    version = _version(CATALOG_VERSION_KEY)
    if version is None:
        return None
    canonical = json.dumps(params, sort_keys=True, cls=DjangoJSONEncoder)
    digest = hashlib.sha256(canonical.encode()).hexdigest()[:32]
    return f"catalog:list:{version}:{digest}"


def detail_cache_key(product_id: int) -> str | None:
    versions = _versions(product_version_key(product_id), TAXONOMY_VERSION_KEY)
    if versions is None:
        return None
    product, taxonomy = versions
    return f"catalog:detail:{product_id}:{product}:{taxonomy}"


def categories_cache_key() -> str | None:
    taxonomy = _version(TAXONOMY_VERSION_KEY)
    return None if taxonomy is None else f"catalog:categories:{taxonomy}"


def render(data: Any) -> CachedBody:
    body = json.dumps(data, cls=DjangoJSONEncoder, separators=(",", ":")).encode()
    return CachedBody(body=body, etag=f'"{hashlib.sha256(body).hexdigest()[:40]}"')


def cached_body(key: str | None, build: Callable[[], Any]) -> CachedBody:
    """The cached rendering under ``key``, or ``build()`` rendered and stored."""
    if key is not None:
        try:
            hit = cache.get(key)
        except Exception as exc:
            logger.warning("catalog cache read failed", extra={"error": str(exc)})
            hit, key = None, None
        if hit is not None:
            return CachedBody(body=hit[0], etag=hit[1])
    rendered = render(build())
    if key is not None:
        try:
            cache.set(key, (rendered.body, rendered.etag), timeout=settings.CATALOG_CACHE_SECONDS)
        except Exception as exc:
            logger.warning("catalog cache write failed", extra={"error": str(exc)})
    return rendered


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 weak comparison, as ``If-None-Match`` asks for."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    wanted = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == wanted for tag in if_none_match.split(","))
