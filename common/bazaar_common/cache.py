"""Django's Redis cache backend without the per-call client construction.

Django's ``RedisCacheClient.get_client`` builds a new ``redis.Redis`` object on every cache call
(its constructor fills a table of ~170 response callbacks): on a cached catalog read that was
~0.25 ms of CPU per ``cache.get``, more than the Redis round trip itself. A ``redis.Redis`` object
is a thin, thread-safe wrapper over its connection pool, so one per pool serves every call.
"""

from __future__ import annotations

from typing import Any

from django.core.cache.backends.redis import RedisCache, RedisCacheClient


class ReusingRedisCacheClient(RedisCacheClient):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, Any] = {}

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        # Django's private helpers (not in its stubs): the pool index and pool for this read/write.
        backend: Any = self
        index = backend._get_connection_pool_index(write)
        client = self._clients.get(index)
        if client is None:
            client = self._clients[index] = backend._client(connection_pool=backend._get_connection_pool(write))
        return client


class BazaarRedisCache(RedisCache):
    def __init__(self, server: Any, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = ReusingRedisCacheClient
