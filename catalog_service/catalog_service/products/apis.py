"""The public catalog API (no token needed): product list and detail, the category tree.

Responses are rendered once, cached in Redis under version keys (see ``cache``) and carry a strong
``ETag``; ``If-None-Match`` with a current tag answers 304 without a body.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.views import APIView

from bazaar_common.drf import StrictQueryParams, reject_query_params
from bazaar_common.pagination import MAX_PAGE_SIZE, BazaarPagination
from catalog_service.products import cache, selectors
from catalog_service.products.models import Product
from catalog_service.products.selectors import AnnotatedProduct

# Ids are 64-bit database integers; a larger number names nothing (and must not reach the driver).
MAX_ID = 2**63 - 1


def merchant_brief(product: Product) -> dict[str, Any]:
    return {"id": product.merchant_id, "name": product.merchant.name, "slug": product.merchant.slug}


def category_brief(product: Product) -> dict[str, Any] | None:
    if product.category is None:
        return None
    return {"id": product.category_id, "name": product.category.name, "slug": product.category.slug}


def product_summary(product: AnnotatedProduct) -> dict[str, Any]:
    return {
        "id": product.pk,
        "sku": product.sku,
        "name": product.name,
        "slug": product.slug,
        "price": f"{product.price:.2f}",
        "currency": product.currency,
        "available": max(product.available, 0),
        "in_stock": product.available > 0,
        "image_url": product.image_urls[0] if product.image_urls else None,
        "merchant": merchant_brief(product),
        "category": category_brief(product),
        "created_at": product.created_at,
    }


def product_document(product: AnnotatedProduct) -> dict[str, Any]:
    return {
        **product_summary(product),
        "description": product.description,
        "image_urls": product.image_urls,
        "attributes": product.attributes,
        "updated_at": product.updated_at,
    }


class BriefOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    slug = serializers.CharField()


class ProductSummaryOutputSerializer(serializers.Serializer):
    """What :func:`product_summary` renders (the answer is cached JSON: this documents it)."""

    id = serializers.IntegerField()
    sku = serializers.CharField()
    name = serializers.CharField()
    slug = serializers.CharField()
    price = serializers.DecimalField(max_digits=12, decimal_places=2)
    currency = serializers.CharField()
    available = serializers.IntegerField(min_value=0)
    in_stock = serializers.BooleanField()
    image_url = serializers.CharField(allow_null=True)
    merchant = BriefOutputSerializer()
    category = BriefOutputSerializer(allow_null=True)
    created_at = serializers.DateTimeField()


class ProductOutputSerializer(ProductSummaryOutputSerializer):
    """What :func:`product_document` renders."""

    description = serializers.CharField(allow_blank=True)
    image_urls = serializers.ListField(child=serializers.CharField())
    attributes = serializers.DictField()
    updated_at = serializers.DateTimeField()


class CategoryNodeOutputSerializer(BriefOutputSerializer):
    """One category and its subcategories (``children``, the same shape, recursively)."""


CategoryNodeOutputSerializer._declared_fields["children"] = CategoryNodeOutputSerializer(many=True)


class CategoryTreeOutputSerializer(serializers.Serializer):
    results = CategoryNodeOutputSerializer(many=True)


def cached_json_response(request: Request, rendered: cache.CachedBody) -> HttpResponse:
    headers = {"ETag": rendered.etag, "Cache-Control": "no-cache"}
    if cache.etag_matches(request.headers.get("If-None-Match"), rendered.etag):
        return HttpResponse(status=304, headers=headers)
    return HttpResponse(rendered.body, content_type="application/json", headers=headers)


def strict_bool(value: str) -> bool:
    lowered = value.lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise serializers.ValidationError("Must be true or false.")


class ProductListApi(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list[type] = []
    pagination_class = BazaarPagination  # documents the list as the shared paginated envelope

    class FilterSerializer(StrictQueryParams):
        q = serializers.CharField(required=False, allow_blank=True, max_length=200, trim_whitespace=True)
        category = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)
        merchant = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)
        price_min = serializers.DecimalField(
            required=False, max_digits=10, decimal_places=2, min_value=0, coerce_to_string=False
        )
        price_max = serializers.DecimalField(
            required=False, max_digits=10, decimal_places=2, min_value=0, coerce_to_string=False
        )
        in_stock = serializers.CharField(required=False)
        ordering = serializers.ChoiceField(required=False, choices=sorted(selectors.ORDERINGS))
        # Named here so the strict parameters allow them; the shared paginator reads them.
        page = serializers.IntegerField(required=False, min_value=1)
        page_size = serializers.IntegerField(required=False, min_value=1, max_value=MAX_PAGE_SIZE)

        def validate_in_stock(self, value: str) -> bool:
            return strict_bool(value)

        def validate_category(self, value: int) -> int:
            if not selectors.category_exists(category_id=value):
                raise serializers.ValidationError("No category with this id.")
            return value

        def validate_merchant(self, value: int) -> int:
            if not selectors.merchant_exists(merchant_id=value):
                raise serializers.ValidationError("No merchant with this id.")
            return value

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            low, high = attrs.get("price_min"), attrs.get("price_max")
            if low is not None and high is not None and low > high:
                raise ValidationError({"price_max": ["Must not be below price_min."]})
            return attrs

    @extend_schema(
        operation_id="catalog_products_list",
        summary="Browse the catalog",
        parameters=[
            OpenApiParameter("q", str, description="Full-text search over name, SKU and description."),
            OpenApiParameter("category", int, description="A category id; its descendants are included."),
            OpenApiParameter("merchant", int),
            OpenApiParameter("price_min", OpenApiTypes.DECIMAL),
            OpenApiParameter("price_max", OpenApiTypes.DECIMAL),
            OpenApiParameter("in_stock", bool),
            OpenApiParameter("ordering", str, enum=sorted(selectors.ORDERINGS)),
            OpenApiParameter("page", int),
            OpenApiParameter("page_size", int, description=f"At most {MAX_PAGE_SIZE}."),
        ],
        responses={
            200: ProductSummaryOutputSerializer(many=True),
            304: OpenApiResponse(description="Not modified (If-None-Match)."),
            400: OpenApiResponse(description="A bad query parameter, named in errors[].field."),
        },
    )
    def get(self, request: Request) -> HttpResponse:
        # Keyed by the raw query: a cached page skips validation (see cache.list_cache_key).
        key = cache.list_cache_key(sorted(request.query_params.lists()))
        rendered = cache.cached_body(key, lambda: self._page(request, self._validated(request)))
        return cached_json_response(request, rendered)

    def _validated(self, request: Request) -> dict[str, Any]:
        params = self.FilterSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        return params.validated_data

    @staticmethod
    def _page(request: Request, data: dict[str, Any]) -> dict[str, Any]:
        filters = selectors.ProductFilters(
            q=data.get("q", ""),
            category_id=data.get("category"),
            merchant_id=data.get("merchant"),
            price_min=data.get("price_min"),
            price_max=data.get("price_max"),
            in_stock=data.get("in_stock"),
            ordering=data.get("ordering"),
        )
        paginator = ProductListApi.pagination_class()
        items = paginator.paginate_queryset(selectors.product_list_public(filters=filters), request)
        return paginator.page_envelope([product_summary(product) for product in items or []])


class ProductDetailApi(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list[type] = []

    @extend_schema(
        operation_id="catalog_products_retrieve",
        summary="One product",
        responses={
            200: ProductOutputSerializer,
            304: OpenApiResponse(description="Not modified (If-None-Match)."),
            404: OpenApiResponse(description="No active product with this id."),
        },
    )
    def get(self, request: Request, product_id: int) -> HttpResponse:
        reject_query_params(request)

        def build() -> dict[str, Any]:
            product = selectors.product_get_public(product_id=product_id)
            if product is None:
                raise NotFound("No such product.")
            return product_document(product)

        rendered = cache.cached_body(cache.detail_cache_key(product_id), build)
        return cached_json_response(request, rendered)


class CategoryTreeApi(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list[type] = []

    @extend_schema(
        operation_id="catalog_categories_tree",
        summary="The category tree",
        responses={
            200: CategoryTreeOutputSerializer,
            304: OpenApiResponse(description="Not modified (If-None-Match)."),
        },
    )
    def get(self, request: Request) -> HttpResponse:
        reject_query_params(request)
        rendered = cache.cached_body(cache.categories_cache_key(), lambda: {"results": selectors.category_tree()})
        return cached_json_response(request, rendered)
