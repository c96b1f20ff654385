"""The merchant API: a merchant's users manage their own products, stock and colleagues' grants.

Views parse input, call one selector or service and shape the output through the serializers below
(which drf-spectacular documents). Who may see or change what is decided by the selectors through
the same :class:`~catalog_service.products.permissions.CatalogActor` functions the Django admin uses:
a product the caller holds no right on is 404 (it does not exist for them), one they may see but not
change is 403. Platform admins (role ``admin``) act on every merchant. Every list is a page of the
shared pagination.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from bazaar_common.auth.permissions import IsAdmin
from bazaar_common.domain import Forbidden
from bazaar_common.drf import StrictQueryParams, StrictSerializer, caller_id, reject_query_params
from bazaar_common.pagination import BazaarPagination
from catalog_service.inventory import selectors as inventory_selectors
from catalog_service.inventory import services as inventory_services
from catalog_service.products import permissions, selectors, services
from catalog_service.products.apis import MAX_ID
from catalog_service.products.models import MerchantMember, Product

GRANTABLE = [permissions.VIEW, permissions.CHANGE, permissions.ADJUST_STOCK]


def _actor(request: Request) -> permissions.CatalogActor:
    """The caller as the access functions know them (the admin builds one from its session)."""
    return permissions.CatalogActor(
        user_id=caller_id(request), acts_on_all=permissions.principal_is_admin(request.user)
    )


class PageParams(StrictQueryParams):
    page = serializers.IntegerField(required=False, min_value=1)
    page_size = serializers.IntegerField(required=False, min_value=1, max_value=100)


def _page(request: Request, view: APIView, items: Any, render: Callable[[list[Any]], Any]) -> Response:
    """One page of ``items`` in the shared envelope; ``render`` turns the page's items into data."""
    paginator = getattr(view, "pagination_class", BazaarPagination)()
    page = paginator.paginate_queryset(items, request, view=view)
    return paginator.get_paginated_response(render(list(page or [])))


def _many(serializer: type[serializers.Serializer]) -> Callable[[list[Any]], Any]:
    return lambda items: serializer(items, many=True).data


# --- Output ------------------------------------------------------------------------------------------


class StockOutputSerializer(serializers.Serializer):
    on_hand = serializers.IntegerField()
    reserved = serializers.IntegerField()
    available = serializers.IntegerField()


class CategoryBriefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    slug = serializers.CharField()


@extend_schema_serializer(component_name="MerchantProduct")
class MerchantProductOutputSerializer(serializers.Serializer):
    """A product with its stock and the caller's rights on it (``permissions``)."""

    id = serializers.IntegerField(source="product.pk")
    merchant_id = serializers.IntegerField(source="product.merchant_id")
    sku = serializers.CharField(source="product.sku")
    name = serializers.CharField(source="product.name")
    slug = serializers.CharField(source="product.slug")
    description = serializers.CharField(source="product.description")
    price = serializers.DecimalField(source="product.price", max_digits=10, decimal_places=2)
    currency = serializers.CharField(source="product.currency")
    is_active = serializers.BooleanField(source="product.is_active")
    category = CategoryBriefSerializer(source="product.category", allow_null=True)
    image_urls = serializers.ListField(source="product.image_urls", child=serializers.CharField())
    attributes = serializers.DictField(source="product.attributes")
    stock = StockOutputSerializer()
    permissions = serializers.ListField(child=serializers.ChoiceField(choices=permissions.PRODUCT_PERMISSIONS))
    created_at = serializers.DateTimeField(source="product.created_at")
    updated_at = serializers.DateTimeField(source="product.updated_at")


@extend_schema_serializer(component_name="MerchantStockMovement")
class StockMovementOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    delta_on_hand = serializers.IntegerField()
    delta_reserved = serializers.IntegerField()
    on_hand_after = serializers.IntegerField()
    reserved_after = serializers.IntegerField()
    reason = serializers.CharField()
    note = serializers.CharField()
    order_id = serializers.CharField()
    actor = serializers.CharField()
    created_at = serializers.DateTimeField()


@extend_schema_serializer(component_name="MerchantMembership")
class MembershipOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="merchant.pk")
    name = serializers.CharField(source="merchant.name")
    slug = serializers.CharField(source="merchant.slug")
    is_active = serializers.BooleanField(source="merchant.is_active")
    # The caller's role there; null for a platform admin who is no member.
    role = serializers.ChoiceField(choices=MerchantMember.Role.choices, allow_null=True)


@extend_schema_serializer(component_name="MerchantMember")
class MemberOutputSerializer(serializers.Serializer):
    merchant_id = serializers.IntegerField()
    user_id = serializers.UUIDField()
    role = serializers.ChoiceField(choices=MerchantMember.Role.choices)


@extend_schema_serializer(component_name="MerchantProductGrant")
class GrantOutputSerializer(serializers.Serializer):
    user_id = serializers.UUIDField()
    product_id = serializers.IntegerField()
    permissions = serializers.ListField(child=serializers.ChoiceField(choices=permissions.PRODUCT_PERMISSIONS))


class GrantProductOutputSerializer(serializers.Serializer):
    product_id = serializers.IntegerField()
    permissions = serializers.ListField(child=serializers.ChoiceField(choices=permissions.PRODUCT_PERMISSIONS))


@extend_schema_serializer(component_name="MerchantGrantResult")
class GrantResultOutputSerializer(serializers.Serializer):
    user_id = serializers.UUIDField()
    products = GrantProductOutputSerializer(many=True)


def _product_response(actor: permissions.CatalogActor, product: Product, status_code: int = 200) -> Response:
    [detail] = selectors.merchant_product_details(actor=actor, products=[product])
    return Response(MerchantProductOutputSerializer(detail).data, status=status_code)


def _product_page(actor: permissions.CatalogActor) -> Callable[[list[Product]], Any]:
    """Stock and rights for a whole page of products at once."""
    return lambda products: (
        MerchantProductOutputSerializer(
            selectors.merchant_product_details(actor=actor, products=products), many=True
        ).data
    )


# --- Input -------------------------------------------------------------------------------------------


class ProductFieldsMixin(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    slug = serializers.SlugField(max_length=220, required=False)
    description = serializers.CharField(required=False, allow_blank=True, max_length=20000)
    price = serializers.DecimalField(max_digits=10, decimal_places=2, min_value=0)
    currency = serializers.CharField(required=False, min_length=3, max_length=3)
    category_id = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=MAX_ID)
    is_active = serializers.BooleanField(required=False)
    image_urls = serializers.ListField(child=serializers.URLField(max_length=500), required=False, max_length=20)
    attributes = serializers.DictField(required=False)

    def validate_currency(self, value: str) -> str:
        value = value.upper()
        if value not in settings.CATALOG_CURRENCIES:
            raise serializers.ValidationError(
                f"Unsupported currency; one of: {', '.join(settings.CATALOG_CURRENCIES)}."
            )
        return value

    def validate_category_id(self, value: int | None) -> int | None:
        # Checked here too so a missing category is reported with the other invalid fields.
        if value is not None and not selectors.category_exists(category_id=value):
            raise serializers.ValidationError("No category with this id.")
        return value


# --- Products ----------------------------------------------------------------------------------------


class MerchantProductListCreateApi(APIView):
    permission_classes = [permissions.IsMerchantOrAdmin]
    pagination_class = BazaarPagination  # documents the list as the paginated envelope it is

    class FilterSerializer(PageParams):
        merchant = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)
        is_active = serializers.BooleanField(required=False)

    @extend_schema_serializer(component_name="MerchantProductCreateInput")
    class InputSerializer(StrictSerializer, ProductFieldsMixin):
        merchant_id = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)
        sku = serializers.RegexField(r"^[A-Za-z0-9._-]{1,64}$", max_length=64)
        initial_stock = serializers.IntegerField(required=False, min_value=0, max_value=10_000_000, default=0)

    @extend_schema(
        operation_id="catalog_merchant_products_list",
        parameters=[FilterSerializer],
        responses={200: MerchantProductOutputSerializer(many=True)},
        summary="My products (all states)",
    )
    def get(self, request: Request) -> Response:
        params = self.FilterSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        actor = _actor(request)
        products = selectors.merchant_products(
            actor=actor,
            merchant_id=params.validated_data.get("merchant"),
            is_active=params.validated_data.get("is_active"),
        )
        return _page(request, self, products, _product_page(actor))

    @extend_schema(
        operation_id="catalog_merchant_products_create",
        summary="Create a product (owner or manager of the merchant)",
        request=InputSerializer,
        responses={201: MerchantProductOutputSerializer},
    )
    def post(self, request: Request) -> Response:
        body = self.InputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        actor = _actor(request)
        data = dict(body.validated_data)
        merchant = selectors.merchant_for_new_product(actor=actor, merchant_id=data.pop("merchant_id", None))
        product = services.product_create(
            merchant=merchant,
            actor_id=actor.user_id,
            initial_stock=data.pop("initial_stock"),
            **services.product_input_resolve(data),
        )
        return _product_response(actor, product, status.HTTP_201_CREATED)


class MerchantProductDetailApi(APIView):
    permission_classes = [permissions.IsMerchantOrAdmin]

    @extend_schema_serializer(component_name="MerchantProductUpdateInput")
    class UpdateSerializer(StrictSerializer, ProductFieldsMixin):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, partial=True, **kwargs)

    @extend_schema(
        operation_id="catalog_merchant_products_retrieve",
        responses={200: MerchantProductOutputSerializer},
        summary="One of my products",
    )
    def get(self, request: Request, product_id: int) -> Response:
        reject_query_params(request)
        actor = _actor(request)
        return _product_response(actor, selectors.merchant_product_get(actor=actor, product_id=product_id))

    @extend_schema(
        operation_id="catalog_merchant_products_update",
        summary="Change a product",
        request=UpdateSerializer,
        responses={200: MerchantProductOutputSerializer},
    )
    def patch(self, request: Request, product_id: int) -> Response:
        actor = _actor(request)
        product = selectors.merchant_product_get(actor=actor, product_id=product_id, permission=permissions.CHANGE)
        body = self.UpdateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        product = services.product_update(product=product, data=dict(body.validated_data))
        return _product_response(actor, product)


class MerchantProductDeactivateApi(APIView):
    permission_classes = [permissions.IsMerchantOrAdmin]

    @extend_schema(
        operation_id="catalog_merchant_products_deactivate",
        request=None,
        responses={200: MerchantProductOutputSerializer},
        summary="Take off sale",
    )
    def post(self, request: Request, product_id: int) -> Response:
        actor = _actor(request)
        product = selectors.merchant_product_get(actor=actor, product_id=product_id, permission=permissions.CHANGE)
        return _product_response(actor, services.product_deactivate(product=product))


# --- Stock -------------------------------------------------------------------------------------------


class MerchantStockAdjustApi(APIView):
    permission_classes = [permissions.IsMerchantOrAdmin]

    @extend_schema_serializer(component_name="MerchantStockAdjustInput")
    class InputSerializer(StrictSerializer):
        delta = serializers.IntegerField(min_value=-10_000_000, max_value=10_000_000)
        reason = serializers.CharField(max_length=500)

    @extend_schema(
        operation_id="catalog_merchant_stock_adjust",
        summary="Add or remove on-hand units, with a reason",
        request=InputSerializer,
        responses={200: StockOutputSerializer},
    )
    def post(self, request: Request, product_id: int) -> Response:
        actor = _actor(request)
        product = selectors.merchant_product_get(
            actor=actor, product_id=product_id, permission=permissions.ADJUST_STOCK
        )
        body = self.InputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        stock = inventory_services.stock_adjust(
            product_id=product.pk,
            delta=body.validated_data["delta"],
            note=body.validated_data["reason"],
            actor=actor.user_id,
        )
        return Response(StockOutputSerializer(stock).data)


class MerchantStockMovementListApi(APIView):
    permission_classes = [permissions.IsMerchantOrAdmin]
    pagination_class = BazaarPagination  # documents the list as the paginated envelope it is

    @extend_schema(
        operation_id="catalog_merchant_stock_movements",
        parameters=[PageParams],
        responses={200: StockMovementOutputSerializer(many=True)},
        summary="The stock ledger of a product, newest first",
    )
    def get(self, request: Request, product_id: int) -> Response:
        PageParams(data=request.query_params).is_valid(raise_exception=True)
        product = selectors.merchant_product_get(actor=_actor(request), product_id=product_id)
        movements = inventory_selectors.stock_movements(product_id=product.pk)
        return _page(request, self, movements, _many(StockMovementOutputSerializer))


# --- Merchants, members, grants ----------------------------------------------------------------------


class MerchantListCreateApi(APIView):
    permission_classes = [permissions.IsMerchantOrAdmin]
    pagination_class = BazaarPagination  # documents the list as the paginated envelope it is

    @extend_schema_serializer(component_name="MerchantCreateInput")
    class InputSerializer(StrictSerializer):
        name = serializers.CharField(max_length=200)
        slug = serializers.SlugField(max_length=100)
        owner_id = serializers.UUIDField()

    @extend_schema(
        operation_id="catalog_merchant_merchants_list",
        parameters=[PageParams],
        responses={200: MembershipOutputSerializer(many=True)},
        summary="The merchants I work for",
    )
    def get(self, request: Request) -> Response:
        PageParams(data=request.query_params).is_valid(raise_exception=True)
        memberships = selectors.merchant_memberships(actor=_actor(request))
        return _page(request, self, memberships, _many(MembershipOutputSerializer))

    @extend_schema(
        operation_id="catalog_merchant_merchants_create",
        summary="Open a merchant (platform admins)",
        request=InputSerializer,
        responses={
            201: MembershipOutputSerializer,
            409: OpenApiResponse(description="A merchant with this slug exists (code slug_taken)."),
        },
    )
    def post(self, request: Request) -> Response:
        if not IsAdmin().has_permission(request, self):
            raise Forbidden("Only platform admins open merchants.")
        body = self.InputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        merchant = services.merchant_create(
            name=body.validated_data["name"],
            slug=body.validated_data["slug"],
            owner_id=str(body.validated_data["owner_id"]),
        )
        membership = selectors.MerchantMembership(merchant=merchant, role=None)
        return Response(MembershipOutputSerializer(membership).data, status=status.HTTP_201_CREATED)


class MerchantMemberAddApi(APIView):
    permission_classes = [permissions.IsMerchantOrAdmin]

    @extend_schema_serializer(component_name="MerchantMemberAddInput")
    class InputSerializer(StrictSerializer):
        user_id = serializers.UUIDField()
        role = serializers.ChoiceField(choices=MerchantMember.Role.choices)

    @extend_schema(
        operation_id="catalog_merchant_members_add",
        summary="Add a colleague to a merchant (owners)",
        request=InputSerializer,
        responses={201: MemberOutputSerializer},
    )
    def post(self, request: Request, merchant_id: int) -> Response:
        merchant = selectors.merchant_get(actor=_actor(request), merchant_id=merchant_id, owner=True)
        body = self.InputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        member = services.merchant_member_add(
            merchant=merchant, user_id=str(body.validated_data["user_id"]), role=body.validated_data["role"]
        )
        return Response(MemberOutputSerializer(member).data, status=status.HTTP_201_CREATED)


@extend_schema_serializer(component_name="MerchantGrantInput")
class GrantInput(StrictSerializer):
    user_id = serializers.UUIDField()
    product_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=MAX_ID), min_length=1, max_length=500
    )
    permissions = serializers.ListField(
        child=serializers.ChoiceField(choices=GRANTABLE), min_length=1, max_length=len(GRANTABLE)
    )


class MerchantGrantListCreateApi(APIView):
    permission_classes = [permissions.IsMerchantOrAdmin]
    pagination_class = BazaarPagination  # documents the list as the paginated envelope it is

    @extend_schema(
        operation_id="catalog_merchant_grants_list",
        parameters=[PageParams],
        responses={200: GrantOutputSerializer(many=True)},
        summary="Who holds which product rights",
    )
    def get(self, request: Request, merchant_id: int) -> Response:
        PageParams(data=request.query_params).is_valid(raise_exception=True)
        merchant = selectors.merchant_get(actor=_actor(request), merchant_id=merchant_id, owner=True)
        return _page(request, self, selectors.merchant_grants(merchant=merchant), _many(GrantOutputSerializer))

    @extend_schema(
        operation_id="catalog_merchant_grants_create",
        summary="Grant a colleague rights on some products (owners)",
        request=GrantInput,
        responses={201: GrantResultOutputSerializer},
    )
    def post(self, request: Request, merchant_id: int) -> Response:
        merchant = selectors.merchant_get(actor=_actor(request), merchant_id=merchant_id, owner=True)
        body = GrantInput(data=request.data)
        body.is_valid(raise_exception=True)
        user_id = str(body.validated_data["user_id"])
        products = selectors.grant_targets(
            merchant=merchant, user_id=user_id, product_ids=body.validated_data["product_ids"]
        )
        services.product_grants_set(
            merchant=merchant,
            user_id=user_id,
            products=products,
            permissions_to_grant=body.validated_data["permissions"],
        )
        result = {"user_id": user_id, "products": selectors.product_grant_of(user_id=user_id, products=products)}
        return Response(GrantResultOutputSerializer(result).data, status=status.HTTP_201_CREATED)


class MerchantGrantRevokeApi(APIView):
    permission_classes = [permissions.IsMerchantOrAdmin]

    @extend_schema(
        operation_id="catalog_merchant_grants_revoke",
        summary="Take product rights back from a colleague (owners)",
        request=GrantInput,
        responses={204: None},
    )
    def post(self, request: Request, merchant_id: int) -> Response:
        merchant = selectors.merchant_get(actor=_actor(request), merchant_id=merchant_id, owner=True)
        body = GrantInput(data=request.data)
        body.is_valid(raise_exception=True)
        user_id = str(body.validated_data["user_id"])
        products = selectors.grant_targets(
            merchant=merchant, user_id=user_id, product_ids=body.validated_data["product_ids"]
        )
        services.product_grants_revoke(
            merchant=merchant,
            user_id=user_id,
            products=products,
            permissions_to_revoke=body.validated_data["permissions"],
        )
        return Response(status=status.HTTP_204_NO_CONTENT)
