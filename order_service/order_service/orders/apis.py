"""HTTP API of the order service: the cart, checkout, orders and their actions, the internal read.

Views parse input, call one service or selector, and shape the output. Input serializers refuse
fields a client must not set (status, totals, prices, owner): a 400 naming the field, never applied.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from django.conf import settings
from django.utils.encoding import force_bytes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_serializer,
)
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound as NotFoundError
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from bazaar_common.auth.permissions import IsCustomer, IsService, roles_required
from bazaar_common.auth.tokens import ROLE_ADMIN, ROLE_CUSTOMER, ROLE_MERCHANT, ROLE_SUPPORT
from bazaar_common.contracts import http as internal
from bazaar_common.drf import StrictSerializer, caller_id, principal
from bazaar_common.errors import problem_body
from bazaar_common.fields import IdField
from bazaar_common.pagination import BazaarPagination
from order_service.orders import selectors, services
from order_service.orders.models import Order, OrderStatus
from order_service.orders.payments import TEST_TOKENS
from order_service.orders.permissions import OrderViewer, order_viewer_for

MAX_QUANTITY = settings.ORDER_MAX_LINE_QUANTITY
MAX_LINES = 100
IDEMPOTENCY_HEADER = "Idempotency-Key"

AnyUserRole = roles_required(ROLE_CUSTOMER, ROLE_MERCHANT, ROLE_SUPPORT, ROLE_ADMIN)
CustomerOrStaff = roles_required(ROLE_CUSTOMER, ROLE_SUPPORT, ROLE_ADMIN)
ShippingRole = roles_required(ROLE_MERCHANT, ROLE_SUPPORT, ROLE_ADMIN)
DeliveryRole = roles_required(ROLE_SUPPORT, ROLE_ADMIN)


class LineInputSerializer(StrictSerializer):
    product_id = IdField()
    quantity = serializers.IntegerField(min_value=1, max_value=MAX_QUANTITY)


class AddressSerializer(StrictSerializer):
    full_name = serializers.CharField(max_length=200)
    line1 = serializers.CharField(max_length=200)
    line2 = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    city = serializers.CharField(max_length=100)
    postal_code = serializers.CharField(max_length=20)
    region = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    country = serializers.RegexField(r"^[A-Z]{2}$", error_messages={"invalid": "Use an ISO 3166-1 alpha-2 code."})
    phone = serializers.CharField(max_length=32, required=False, allow_blank=True, default="")


# --- Output ----------------------------------------------------------------------------------------


class OrderLineOutputSerializer(serializers.Serializer):
    product_id = serializers.IntegerField()
    merchant_id = serializers.IntegerField()
    sku = serializers.CharField()
    name = serializers.CharField()
    unit_price = serializers.DecimalField(max_digits=12, decimal_places=2)
    quantity = serializers.IntegerField()
    currency = serializers.CharField()
    line_total = serializers.DecimalField(max_digits=14, decimal_places=2)
    shipped_at = serializers.DateTimeField(allow_null=True)


class OrderEventOutputSerializer(serializers.Serializer):
    kind = serializers.CharField()
    from_status = serializers.CharField()
    to_status = serializers.CharField()
    actor = serializers.SerializerMethodField()
    reason = serializers.CharField()
    at = serializers.DateTimeField(source="created_at")

    def get_actor(self, event: Any) -> str:
        """Staff see who acted; a customer or merchant sees a role, never another person's id."""
        viewer: OrderViewer | None = self.context.get("viewer")
        if viewer is None or viewer.is_staff:
            return event.actor
        return public_actor(event.actor, viewer_id=viewer.user_id, customer_id=str(event.order.customer_id))


def buyer_reference(customer_id: str) -> str:
    """A stable, opaque name for a buyer (a merchant can tell repeat buyers apart), from which the
    buyer's user id cannot be recovered without the service's secret."""
    digest = hmac.new(force_bytes(settings.SECRET_KEY), f"buyer:{customer_id}".encode(), hashlib.sha256)
    return f"buyer_{digest.hexdigest()[:16]}"


def public_actor(actor: str, *, viewer_id: str, customer_id: str) -> str:
    """How a non-staff viewer sees who acted: themselves by id, anyone else by role."""
    if actor == viewer_id or actor.startswith(("service:", "system:")):
        return actor
    if actor == customer_id:
        return "customer"
    return "staff"


class TotalsOutputSerializer(serializers.Serializer):
    subtotal = serializers.DecimalField(max_digits=12, decimal_places=2)
    total = serializers.DecimalField(max_digits=12, decimal_places=2)
    refunded = serializers.DecimalField(max_digits=12, decimal_places=2, source="refunded_amount")
    currency = serializers.CharField()


class OrderOutputSerializer(serializers.Serializer):
    """An order document. ``context["viewer"]`` trims it for merchants (their lines, no email)."""

    id = serializers.UUIDField()
    status = serializers.CharField()
    customer_id = serializers.SerializerMethodField()
    buyer_reference = serializers.SerializerMethodField()
    customer_email = serializers.SerializerMethodField()
    currency = serializers.CharField()
    lines = serializers.SerializerMethodField()
    totals = TotalsOutputSerializer(source="*")
    shipping_address = serializers.SerializerMethodField()
    rejection = serializers.SerializerMethodField()
    timeline = serializers.SerializerMethodField()
    payment_due_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    reserved_at = serializers.DateTimeField(allow_null=True)
    paid_at = serializers.DateTimeField(allow_null=True)
    shipped_at = serializers.DateTimeField(allow_null=True)
    delivered_at = serializers.DateTimeField(allow_null=True)
    cancelled_at = serializers.DateTimeField(allow_null=True)

    def _viewer(self) -> OrderViewer | None:
        return self.context.get("viewer")

    @extend_schema_field(serializers.UUIDField(allow_null=True))
    def get_customer_id(self, order: Order) -> str | None:
        """Null for a merchant: they see :meth:`get_buyer_reference` instead of the buyer's id."""
        viewer = self._viewer()
        if viewer is not None and not viewer.sees_whole_order(order):
            return None
        return str(order.customer_id)

    @extend_schema_field(serializers.CharField())
    def get_buyer_reference(self, order: Order) -> str:
        return buyer_reference(str(order.customer_id))

    @extend_schema_field(OrderEventOutputSerializer(many=True))
    def get_timeline(self, order: Order) -> Any:
        return OrderEventOutputSerializer(order.events.all(), many=True, context=self.context).data

    @extend_schema_field(serializers.EmailField(allow_null=True))
    def get_customer_email(self, order: Order) -> str | None:
        viewer = self._viewer()
        if viewer is not None and not viewer.sees_whole_order(order):
            return None
        return order.customer_email or None

    @extend_schema_field(OrderLineOutputSerializer(many=True))
    def get_lines(self, order: Order) -> Any:
        viewer = self._viewer()
        lines = viewer.visible_lines(order) if viewer is not None else list(order.lines.all())
        return OrderLineOutputSerializer(lines, many=True).data

    @extend_schema_field(AddressSerializer(allow_null=True))
    def get_shipping_address(self, order: Order) -> dict[str, Any] | None:
        return order.shipping_address or None

    @extend_schema_field(serializers.DictField(allow_null=True))
    def get_rejection(self, order: Order) -> dict[str, Any] | None:
        return order.rejection or None


def order_response(order: Order, *, viewer: OrderViewer | None, status_code: int = 200) -> Response:
    order = selectors.order_detail(order_id=order.pk)
    return Response(OrderOutputSerializer(order, context={"viewer": viewer}).data, status=status_code)


def _fingerprint(data: Any) -> str:
    """A stable digest of a request body, to tell a replay from a different request."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


# --- Cart ------------------------------------------------------------------------------------------


class CartItemOutputSerializer(serializers.Serializer):
    product_id = serializers.IntegerField()
    quantity = serializers.IntegerField()
    added_at = serializers.DateTimeField()


class CartOutputSerializer(serializers.Serializer):
    items = CartItemOutputSerializer(many=True)
    item_count = serializers.IntegerField()


def cart_response(customer_id: str, *, status_code: int = 200) -> Response:
    items = selectors.cart_items(customer_id=customer_id)
    data = {"items": items, "item_count": sum(item.quantity for item in items)}
    return Response(CartOutputSerializer(data).data, status=status_code)


class CartApi(APIView):
    """The caller's cart: read it, or empty it."""

    permission_classes = [IsCustomer]

    @extend_schema(operation_id="cart_get", responses=CartOutputSerializer, tags=["cart"])
    def get(self, request: Request) -> Response:
        return cart_response(caller_id(request.user))

    @extend_schema(operation_id="cart_empty", responses={204: None}, tags=["cart"])
    def delete(self, request: Request) -> Response:
        services.cart_empty(customer_id=caller_id(request.user))
        return Response(status=status.HTTP_204_NO_CONTENT)


class CartItemAddApi(APIView):
    permission_classes = [IsCustomer]

    @extend_schema_serializer(component_name="CartItemAddInput")
    class InputSerializer(LineInputSerializer):
        pass

    @extend_schema(
        operation_id="cart_item_add",
        request=InputSerializer,
        responses={201: CartOutputSerializer},
        tags=["cart"],
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        customer_id = caller_id(request.user)
        services.cart_item_add(customer_id=customer_id, **serializer.validated_data)
        return cart_response(customer_id, status_code=status.HTTP_201_CREATED)


class CartItemApi(APIView):
    """One product in the cart: change its quantity, or remove it."""

    permission_classes = [IsCustomer]

    @extend_schema_serializer(component_name="CartItemUpdateInput")
    class InputSerializer(StrictSerializer):
        quantity = serializers.IntegerField(min_value=1, max_value=MAX_QUANTITY)

    @extend_schema(
        operation_id="cart_item_update",
        request=InputSerializer,
        responses=CartOutputSerializer,
        tags=["cart"],
    )
    def patch(self, request: Request, product_id: int) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        customer_id = caller_id(request.user)
        services.cart_item_set_quantity(
            customer_id=customer_id, product_id=product_id, quantity=serializer.validated_data["quantity"]
        )
        return cart_response(customer_id)

    @extend_schema(operation_id="cart_item_remove", responses={204: None}, tags=["cart"])
    def delete(self, request: Request, product_id: int) -> Response:
        services.cart_item_remove(customer_id=caller_id(request.user), product_id=product_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- Orders ----------------------------------------------------------------------------------------


class OrderCheckoutInputSerializer(StrictSerializer):
    # many=True makes a ListSerializer, which takes max_length (the stubs type the child's arguments).
    items = LineInputSerializer(many=True, required=False, max_length=MAX_LINES, allow_empty=False)  # type: ignore[call-arg]
    shipping_address = AddressSerializer(required=False)

    def validate_items(self, items: list[dict[str, int]]) -> list[dict[str, int]]:
        seen: dict[int, int] = {}
        for index, item in enumerate(items):
            if item["product_id"] in seen:
                raise ValidationError(
                    {
                        str(index): {
                            "product_id": [
                                f"Product {item['product_id']} is already on line {seen[item['product_id']]}."
                            ]
                        }
                    }
                )
            seen[item["product_id"]] = index
        return items


# An order state machine refusal (bazaar_common.domain.Conflict): its problem body is documented
# by bazaar_common.openapi.
NOT_NOW = OpenApiResponse(description="The order is not in a state that allows this.")


class OrderListCheckoutApi(APIView):
    """``GET``: the orders the caller may see. ``POST``: checkout (202, the order is pending)."""

    def get_permissions(self) -> list[Any]:
        return [IsCustomer()] if self.request.method == "POST" else [AnyUserRole()]

    permission_classes = [AnyUserRole]  # POST narrows this to customers (get_permissions)
    pagination_class = BazaarPagination  # also what documents the list as the paginated envelope

    class FilterSerializer(StrictSerializer):
        status = serializers.ChoiceField(choices=OrderStatus.choices, required=False)
        page = serializers.IntegerField(required=False)
        page_size = serializers.IntegerField(required=False)

    @extend_schema(
        operation_id="orders_list",
        parameters=[OpenApiParameter("status", str, enum=OrderStatus.values)],
        responses=OrderOutputSerializer(many=True),
        tags=["orders"],
    )
    def get(self, request: Request) -> Response:
        filters = self.FilterSerializer(data=request.query_params.dict())
        filters.is_valid(raise_exception=True)
        viewer = order_viewer_for(principal(request))
        queryset = selectors.order_list(viewer=viewer, status=filters.validated_data.get("status"))
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(queryset, request, view=self)
        data = OrderOutputSerializer(page, many=True, context={"viewer": viewer}).data
        return paginator.get_paginated_response(data)

    @extend_schema(
        operation_id="orders_checkout",
        request=OrderCheckoutInputSerializer,
        parameters=[
            OpenApiParameter(
                IDEMPOTENCY_HEADER,
                str,
                location=OpenApiParameter.HEADER,
                description="Same key and body: the same order again. Same key, other body: 422.",
            )
        ],
        responses={
            202: OrderOutputSerializer,
            409: OpenApiResponse(description="Unpaid orders would hold more of a product than allowed."),
            422: OpenApiResponse(description="This Idempotency-Key was used with another request body."),
        },
        tags=["orders"],
    )
    def post(self, request: Request) -> Response:
        key = request.headers.get(IDEMPOTENCY_HEADER, "").strip()
        if len(key) > 255 or (key and not key.isprintable()):
            raise ValidationError({IDEMPOTENCY_HEADER: ["At most 255 printable characters."]})
        serializer = OrderCheckoutInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        address = serializer.validated_data.get("shipping_address")
        customer_id = caller_id(request.user)
        result = services.order_checkout(
            customer_id=customer_id,
            customer_email=str(principal(request).claims.get("email") or ""),
            items=serializer.validated_data.get("items"),
            shipping_address=dict(address) if address is not None else None,
            idempotency_key=key,
            fingerprint=_fingerprint(request.data),
        )
        response = order_response(
            result.order, viewer=order_viewer_for(principal(request)), status_code=status.HTTP_202_ACCEPTED
        )
        response["Location"] = f"/api/v1/orders/{result.order.pk}"
        if result.replayed:
            response["Idempotent-Replayed"] = "true"
        return response


class OrderDetailApi(APIView):
    permission_classes = [AnyUserRole]

    @extend_schema(operation_id="orders_get", responses=OrderOutputSerializer, tags=["orders"])
    def get(self, request: Request, order_id: Any) -> Response:
        viewer = order_viewer_for(principal(request))
        order = selectors.order_get(viewer=viewer, order_id=order_id)
        return Response(OrderOutputSerializer(order, context={"viewer": viewer}).data)


class OrderPayApi(APIView):
    permission_classes = [IsCustomer]

    @extend_schema_serializer(component_name="OrderPayInput")
    class InputSerializer(StrictSerializer):
        card_token = serializers.CharField(
            max_length=64,
            help_text=f"A card token; simulated provider test tokens: {', '.join(TEST_TOKENS)}.",
        )

    @extend_schema(
        operation_id="orders_pay",
        request=InputSerializer,
        responses={
            200: OrderOutputSerializer,
            402: OpenApiResponse(description="Declined; the order stays reserved, retry allowed."),
            409: OpenApiResponse(description="The order is not awaiting payment."),
            504: OpenApiResponse(description="The provider did not answer; the order is unchanged."),
        },
        tags=["orders"],
    )
    def post(self, request: Request, order_id: Any) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        viewer = order_viewer_for(principal(request))
        order = selectors.order_get(viewer=viewer, order_id=order_id)
        if not viewer.may_pay(order):
            raise NotFoundError()
        outcome = services.order_pay(
            order_id=order.pk, actor=viewer.user_id, card_token=serializer.validated_data["card_token"]
        )
        if outcome.declined:
            body = problem_body(
                402,
                "The payment was declined; the order is still reserved and can be paid again.",
                title="Payment declined",
                code=outcome.attempt.failure_reason,
            )
            return Response(body, status=402, content_type="application/problem+json")
        return order_response(outcome.order, viewer=viewer)


class OrderCancelApi(APIView):
    permission_classes = [CustomerOrStaff]

    @extend_schema_serializer(component_name="OrderCancelInput")
    class InputSerializer(StrictSerializer):
        reason = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")

    @extend_schema(
        operation_id="orders_cancel",
        request=InputSerializer,
        responses={200: OrderOutputSerializer, 409: NOT_NOW},
        tags=["orders"],
    )
    def post(self, request: Request, order_id: Any) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        viewer = order_viewer_for(principal(request))
        order = selectors.order_get(viewer=viewer, order_id=order_id)
        if not viewer.may_cancel(order):
            raise NotFoundError()
        order = services.order_cancel(
            order_id=order.pk, actor=viewer.user_id, reason=serializer.validated_data["reason"]
        )
        return order_response(order, viewer=viewer)


class OrderShipApi(APIView):
    """A merchant marks its lines shipped; the order is shipped once every line is."""

    permission_classes = [ShippingRole]

    @extend_schema(
        operation_id="orders_ship",
        request=None,
        responses={200: OrderOutputSerializer, 409: NOT_NOW},
        tags=["orders"],
    )
    def post(self, request: Request, order_id: Any) -> Response:
        viewer = order_viewer_for(principal(request))
        order = selectors.order_get(viewer=viewer, order_id=order_id)
        order = services.order_ship_lines(
            order_id=order.pk, actor=viewer.user_id, merchant_ids=viewer.shippable_merchant_ids(order)
        )
        return order_response(order, viewer=viewer)


class OrderDeliverApi(APIView):
    permission_classes = [DeliveryRole]

    @extend_schema(
        operation_id="orders_deliver",
        request=None,
        responses={200: OrderOutputSerializer, 409: NOT_NOW},
        tags=["orders"],
    )
    def post(self, request: Request, order_id: Any) -> Response:
        viewer = order_viewer_for(principal(request))
        order = selectors.order_get(viewer=viewer, order_id=order_id)
        order = services.order_mark_delivered(order_id=order.pk, actor=viewer.user_id)
        return order_response(order, viewer=viewer)


# --- Internal --------------------------------------------------------------------------------------


class InternalCustomerOrdersApi(APIView):
    """Every order of one customer, for the privacy export (service tokens only)."""

    permission_classes = [IsService]

    class FilterSerializer(StrictSerializer):
        customer_id = serializers.UUIDField()

    @extend_schema_serializer(component_name="InternalCustomerOrders")
    class OutputSerializer(serializers.Serializer):
        results = OrderOutputSerializer(many=True)

    @extend_schema(
        operation_id="internal_orders_of_customer",
        parameters=[OpenApiParameter("customer_id", str, required=True)],
        responses=OutputSerializer,
        tags=["internal"],
    )
    def get(self, request: Request) -> Response:
        filters = self.FilterSerializer(data=request.query_params.dict())
        filters.is_valid(raise_exception=True)
        orders = selectors.orders_of_customer(customer_id=str(filters.validated_data["customer_id"]))
        # Through the contract the profile service parses it with: what leaves is what it reads.
        answer = internal.CustomerOrders.parse(self.OutputSerializer({"results": orders}).data)
        return Response(answer.to_json())
