"""Internal endpoints for other services (service tokens only; the gateway never routes them)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from bazaar_common.auth.permissions import IsService
from catalog_service.products import permissions, selectors
from catalog_service.products.apis import MAX_ID, StrictQueryParams, reject_query_params

MAX_IDS = 200


class InternalProductListApi(APIView):
    """Current prices and availability of products, for the order service's checkout."""

    permission_classes = [IsService]

    class FilterSerializer(StrictQueryParams):
        ids = serializers.CharField(max_length=MAX_IDS * 21)

        def validate_ids(self, value: str) -> list[int]:
            parts = [part.strip() for part in value.split(",")]
            if not parts or any(not part.isdigit() or not 1 <= int(part) <= MAX_ID for part in parts):
                raise serializers.ValidationError("A comma-separated list of positive integer ids.")
            ids = list(dict.fromkeys(int(part) for part in parts))
            if len(ids) > MAX_IDS:
                raise serializers.ValidationError(f"At most {MAX_IDS} ids.")
            return ids

    @extend_schema(
        exclude=True,  # internal: not part of the public document the gateway assembles
        operation_id="internal_catalog_products",
        summary="Prices and availability by id (service tokens only)",
        responses={200: OpenApiResponse(description="{results: [...], missing: [ids]}")},
    )
    def get(self, request: Request) -> Response:
        params = self.FilterSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        ids = params.validated_data["ids"]
        products = selectors.products_for_internal(ids=ids)
        found = {product.pk for product in products}
        return Response(
            {
                "results": [self._line(product) for product in products],
                "missing": [pk for pk in ids if pk not in found],
            }
        )

    @staticmethod
    def _line(product: Any) -> dict[str, Any]:
        return {
            "id": product.pk,
            "merchant_id": product.merchant_id,
            "sku": product.sku,
            "name": product.name,
            "price": f"{product.price:.2f}",
            "currency": product.currency,
            # An inactive merchant's products cannot be bought either.
            "is_active": product.is_active and product.merchant.is_active,
            "available": max(product.available, 0),
        }


class InternalUserMerchantsApi(APIView):
    """The merchants a user belongs to (the order service shows merchants their orders)."""

    permission_classes = [IsService]

    @extend_schema(
        exclude=True,  # internal: not part of the public document the gateway assembles
        operation_id="internal_catalog_user_merchants",
        summary="Merchant ids of a user (service tokens only)",
        responses={200: OpenApiResponse(description="{merchant_ids: [...]}")},
    )
    def get(self, request: Request, user_id: str) -> Response:
        reject_query_params(request)
        merchant_ids = sorted(permissions.merchants_of_user(user_id=user_id).values_list("pk", flat=True))
        return Response({"merchant_ids": merchant_ids})
