"""Page-number pagination with a capped page size; bad page parameters are 400s, not 404s."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import PageNumberPagination


class _PageParams(serializers.Serializer):
    page = serializers.IntegerField(min_value=1, required=False, default=1)
    page_size = serializers.IntegerField(min_value=1, max_value=100, required=False)


class BazaarPagination(PageNumberPagination):
    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100

    def paginate_queryset(self, queryset: Any, request: Any, view: Any = None) -> list[Any] | None:
        params = _PageParams(data={k: v for k, v in request.query_params.items() if k in ("page", "page_size")})
        params.is_valid(raise_exception=True)
        try:
            return super().paginate_queryset(queryset, request, view)
        except NotFound as exc:  # DRF's answer to a page past the end
            raise ValidationError({"page": ["This page is past the last page."]}) from exc
