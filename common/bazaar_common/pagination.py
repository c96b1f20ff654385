"""Page-number pagination with a capped page size; bad page parameters are 400s, not 404s.

Every list answers one envelope: ``count``, ``page``, ``page_size``, ``next``, ``previous`` and
``results``. The links are relative (path and query): a service behind the gateway does not know
the public address, and a cached page (the catalog's) must not carry the host of its first caller.
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response

MAX_PAGE_SIZE = 100


class _PageParams(serializers.Serializer):
    page = serializers.IntegerField(min_value=1, required=False, default=1)
    page_size = serializers.IntegerField(min_value=1, max_value=MAX_PAGE_SIZE, required=False)


class BazaarPagination(PageNumberPagination):
    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE

    def paginate_queryset(self, queryset: Any, request: Any, view: Any = None) -> list[Any] | None:
        params = _PageParams(data={k: v for k, v in request.query_params.items() if k in ("page", "page_size")})
        params.is_valid(raise_exception=True)
        try:
            return super().paginate_queryset(queryset, request, view)
        except NotFound as exc:  # DRF's answer to a page past the end
            last = max(self.django_paginator_class(queryset, self.get_page_size(request) or 1).num_pages, 1)
            raise ValidationError({"page": [f"This page is past the last page ({last})."]}) from exc

    def page_envelope(self, results: list[Any]) -> dict[str, Any]:
        """The answer for this page, as a plain dict (cacheable before it is rendered)."""
        assert self.page is not None
        return {
            "count": self.page.paginator.count,
            "page": self.page.number,
            "page_size": self.page.paginator.per_page,
            "next": self._link(self.page.next_page_number()) if self.page.has_next() else None,
            "previous": self._link(self.page.previous_page_number()) if self.page.has_previous() else None,
            "results": results,
        }

    def get_paginated_response(self, data: Any) -> Response:
        return Response(self.page_envelope(data))

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        link = {"type": "string", "nullable": True, "format": "uri-reference", "example": "/api/v1/orders?page=2"}
        return {
            "type": "object",
            "required": ["count", "page", "page_size", "next", "previous", "results"],
            "properties": {
                "count": {"type": "integer", "minimum": 0, "example": 42},
                "page": {"type": "integer", "minimum": 1, "example": 1},
                "page_size": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE, "example": 20},
                "next": link,
                "previous": link,
                "results": schema,
            },
        }

    def _link(self, page: int) -> str:
        request = self.request
        assert request is not None  # set by paginate_queryset
        query = request.query_params.copy()
        query["page"] = str(page)
        return f"{request.path}?{query.urlencode()}"
