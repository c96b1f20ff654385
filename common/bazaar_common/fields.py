"""Serializer fields every service uses the same way."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

# Ids are PostgreSQL bigints: a larger number can name nothing, and passed on to the database or to
# another service it would fail there (a 500, or a 400 that reads as the other service's fault).
BIGINT_MAX = 2**63 - 1


class IdField(serializers.IntegerField):
    """A positive database id, refused with 400 at the edge of the service when out of range."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", BIGINT_MAX)
        super().__init__(**kwargs)
