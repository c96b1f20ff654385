"""Internal endpoints for other services (service tokens only; the gateway never routes them).

Answers are built from the contract classes of :mod:`bazaar_common.contracts.http`, which the order
service's ``clients.py`` parses them into.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from bazaar_common.auth.permissions import IsService
from bazaar_common.contracts import http as internal
from bazaar_common.drf import StrictQueryParams, reject_query_params
from catalog_service.products import permissions, selectors
from catalog_service.products.apis import MAX_ID

MAX_IDS = internal.MAX_IDS


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
    )
    def get(self, request: Request) -> Response:
        params = self.FilterSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        ids = params.validated_data["ids"]
        products = selectors.products_for_internal(ids=ids)
        found = {product.pk for product in products}
        answer = internal.CatalogProducts(
            results=[self._snapshot(product) for product in products],
            missing=[pk for pk in ids if pk not in found],
        )
        return Response(answer.to_json())

    @staticmethod
    def _snapshot(product: Any) -> internal.ProductSnapshot:
        return internal.ProductSnapshot(
            id=product.pk,
            merchant_id=product.merchant_id,
            sku=product.sku,
            name=product.name,
            price=product.price,
            currency=product.currency,
            # An inactive merchant's products cannot be bought either.
            is_active=product.is_active and product.merchant.is_active,
            available=max(product.available, 0),
        )


class InternalUserMerchantsApi(APIView):
    """The merchants a user belongs to (the order service shows merchants their orders)."""

    permission_classes = [IsService]

    @extend_schema(
        exclude=True,  # internal: not part of the public document the gateway assembles
        operation_id="internal_catalog_user_merchants",
        summary="Merchant ids of a user (service tokens only)",
    )
    def get(self, request: Request, user_id: str) -> Response:
        reject_query_params(request)
        merchant_ids = sorted(permissions.merchants_of_user(user_id=user_id).values_list("pk", flat=True))
        return Response(internal.UserMerchants(merchant_ids=merchant_ids).to_json())


class InternalReservationListApi(APIView):
    """Reservations by order id, or held ones idle since a time: the order service's periodic
    reconciliation compares them with its orders in both directions."""

    permission_classes = [IsService]

    class FilterSerializer(StrictQueryParams):
        order_ids = serializers.CharField(max_length=MAX_IDS * (internal.MAX_ORDER_ID_LENGTH + 1), required=False)
        held_idle_seconds = serializers.IntegerField(min_value=0, max_value=30 * 24 * 3600, required=False)

        def validate_order_ids(self, value: str) -> list[str]:
            ids = list(dict.fromkeys(part.strip() for part in value.split(",") if part.strip()))
            if not ids or len(ids) > MAX_IDS or any(len(part) > internal.MAX_ORDER_ID_LENGTH for part in ids):
                raise serializers.ValidationError(f"A comma-separated list of 1 to {MAX_IDS} order ids.")
            return ids

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            if ("order_ids" in attrs) == ("held_idle_seconds" in attrs):
                raise serializers.ValidationError({"order_ids": ["Give either order_ids or held_idle_seconds."]})
            return attrs

    @extend_schema(
        exclude=True,  # internal: not part of the public document the gateway assembles
        operation_id="internal_catalog_reservations",
        summary="Reservations by order id, or held and idle (service tokens only)",
    )
    def get(self, request: Request) -> Response:
        from catalog_service.inventory.selectors import reservations_held_idle, reservations_of_orders

        params = self.FilterSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        if "order_ids" in data:
            reservations = reservations_of_orders(order_ids=data["order_ids"])
        else:
            reservations = reservations_held_idle(idle_seconds=data["held_idle_seconds"], limit=MAX_IDS)
        answer = internal.Reservations(
            results=[
                internal.ReservationState(
                    order_id=r.order_id, status=internal.ReservationStatus(r.status), release_reason=r.release_reason
                )
                for r in reservations
            ]
        )
        return Response(answer.to_json())
