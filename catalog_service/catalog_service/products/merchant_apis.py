"""The merchant API: a merchant's users manage their own products, stock and colleagues' grants.

Every product lookup goes through django-guardian object permissions: a product the caller holds
no right on is 404 (it does not exist for them), one they may see but not change is 403.
Platform admins (role ``admin``) act on every merchant.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from bazaar_common.auth.permissions import IsAdmin
from bazaar_common.drf import StrictQueryParams, StrictSerializer, caller_id, reject_query_params
from bazaar_common.pagination import BazaarPagination
from catalog_service.inventory import services as inventory_services
from catalog_service.inventory.models import Stock, StockMovement
from catalog_service.products import permissions, services
from catalog_service.products.apis import MAX_ID, category_brief
from catalog_service.products.models import (
    Category,
    Merchant,
    MerchantMember,
    Product,
    ProductUserObjectPermission,
)

GRANTABLE = [permissions.VIEW, permissions.CHANGE, permissions.ADJUST_STOCK]


# One strict input serializer for every service (unknown fields are a 400 naming them).
StrictInput = StrictSerializer


def _principal_id(request: Request) -> str:
    return caller_id(request)


def _is_admin(request: Request) -> bool:
    return permissions.principal_is_admin(request.user)


def _visible_products(request: Request) -> QuerySet[Product]:
    if _is_admin(request):
        return Product.objects.all()
    return permissions.products_for_user(user_id=_principal_id(request), permission=permissions.VIEW)


def _product_or_404(request: Request, product_id: int, permission: str = permissions.VIEW) -> Product:
    product = _visible_products(request).select_related("merchant", "category").filter(pk=product_id).first()
    if product is None:
        raise NotFound("No such product.")
    if permission != permissions.VIEW and not _is_admin(request):
        allowed = permissions.user_has_product_permission(
            user_id=_principal_id(request), product=product, permission=permission
        )
        if not allowed:
            raise PermissionDenied("You may see this product but not do this to it.")
    return product


def _merchant_or_404(request: Request, merchant_id: int, *, owner: bool = False) -> Merchant:
    merchant = Merchant.objects.filter(pk=merchant_id).first()
    if merchant is None:
        raise NotFound("No such merchant.")
    if _is_admin(request):
        return merchant
    role = permissions.member_role(user_id=_principal_id(request), merchant_id=merchant.pk)
    if role is None:
        raise NotFound("No such merchant.")
    if owner and role != MerchantMember.Role.OWNER:
        raise PermissionDenied("Only an owner of this merchant may do this.")
    return merchant


def merchant_product_documents(products: list[Product], request: Request) -> list[dict[str, Any]]:
    """Documents for many products with three queries in all (stock and permissions in bulk)."""
    ids = [product.pk for product in products]
    stocks = {
        row["product_id"]: (row["on_hand"], row["reserved"])
        for row in Stock.objects.filter(product_id__in=ids).values("product_id", "on_hand", "reserved")
    }
    if _is_admin(request):
        granted: dict[int, list[str]] = {pk: list(permissions.PRODUCT_PERMISSIONS) for pk in ids}
    else:
        granted = {pk: [] for pk in ids}
        rows = ProductUserObjectPermission.objects.filter(
            user__username=_principal_id(request), content_object_id__in=ids
        ).values_list("content_object_id", "permission__codename")
        for product_id, codename in rows:
            granted[product_id].append(codename)
    return [_document(product, stocks.get(product.pk, (0, 0)), sorted(granted[product.pk])) for product in products]


def merchant_product_document(product: Product, request: Request) -> dict[str, Any]:
    return merchant_product_documents([product], request)[0]


def _document(product: Product, stock: tuple[int, int], granted: list[str]) -> dict[str, Any]:
    on_hand, reserved = stock
    return {
        "id": product.pk,
        "merchant_id": product.merchant_id,
        "sku": product.sku,
        "name": product.name,
        "slug": product.slug,
        "description": product.description,
        "price": f"{product.price:.2f}",
        "currency": product.currency,
        "is_active": product.is_active,
        "category": category_brief(product),
        "image_urls": product.image_urls,
        "attributes": product.attributes,
        "stock": {"on_hand": on_hand, "reserved": reserved, "available": on_hand - reserved},
        "permissions": granted,
        "created_at": product.created_at,
        "updated_at": product.updated_at,
    }


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
        if value is not None and not Category.objects.filter(pk=value).exists():
            raise serializers.ValidationError("No category with this id.")
        return value


def _product_changes(data: dict[str, Any]) -> dict[str, Any]:
    changes = dict(data)
    if "category_id" in changes:
        category_id = changes.pop("category_id")
        changes["category"] = Category.objects.get(pk=category_id) if category_id else None
    return changes


class MerchantProductListCreateApi(APIView):
    permission_classes = [permissions.IsMerchantOrAdmin]

    class FilterSerializer(StrictQueryParams):
        merchant = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)
        is_active = serializers.BooleanField(required=False)
        page = serializers.IntegerField(required=False, min_value=1)
        page_size = serializers.IntegerField(required=False, min_value=1, max_value=100)

    @extend_schema_serializer(component_name="MerchantProductCreateInput")
    class InputSerializer(StrictInput, ProductFieldsMixin):
        merchant_id = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)
        sku = serializers.RegexField(r"^[A-Za-z0-9._-]{1,64}$", max_length=64)
        initial_stock = serializers.IntegerField(required=False, min_value=0, max_value=10_000_000, default=0)

    @extend_schema(
        operation_id="catalog_merchant_products_list",
        responses={200: OpenApiResponse(description="A page of product documents.")},
        summary="My products (all states)",
    )
    def get(self, request: Request) -> Response:
        params = self.FilterSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        queryset = _visible_products(request).select_related("merchant", "category").order_by("id")
        if "merchant" in params.validated_data:
            queryset = queryset.filter(merchant_id=params.validated_data["merchant"])
        if "is_active" in params.validated_data:
            queryset = queryset.filter(is_active=params.validated_data["is_active"])
        paginator = BazaarPagination()
        page = paginator.paginate_queryset(queryset, request, view=self)
        return paginator.get_paginated_response(merchant_product_documents(list(page), request))

    @extend_schema(
        operation_id="catalog_merchant_products_create",
        summary="Create a product (owner or manager of the merchant)",
        request=InputSerializer,
        responses={201: OpenApiResponse(description="The product."), 400: OpenApiResponse()},
    )
    def post(self, request: Request) -> Response:
        body = self.InputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        merchant = self._target_merchant(request, data.pop("merchant_id", None))
        product = services.product_create(
            merchant=merchant,
            actor_id=_principal_id(request),
            initial_stock=data.pop("initial_stock"),
            **_product_changes(data),
        )
        return Response(merchant_product_document(product, request), status=status.HTTP_201_CREATED)

    @staticmethod
    def _target_merchant(request: Request, merchant_id: int | None) -> Merchant:
        if _is_admin(request):
            if merchant_id is None:
                raise ValidationError({"merchant_id": ["Required for admins."]})
            merchant = Merchant.objects.filter(pk=merchant_id).first()
            if merchant is None:
                raise ValidationError({"merchant_id": ["No merchant with this id."]})
            return merchant
        user_id = _principal_id(request)
        allowed = [
            m
            for m in permissions.merchants_of_user(user_id=user_id)
            if permissions.can_add_products(user_id=user_id, merchant_id=m.pk)
        ]
        if merchant_id is None:
            if len(allowed) != 1:
                raise ValidationError({"merchant_id": ["Required: say which of your merchants."]})
            return allowed[0]
        for merchant in allowed:
            if merchant.pk == merchant_id:
                return merchant
        raise ValidationError({"merchant_id": ["You cannot add products to this merchant."]})


class MerchantProductDetailApi(APIView):
    permission_classes = [permissions.IsMerchantOrAdmin]

    @extend_schema_serializer(component_name="MerchantProductUpdateInput")
    class UpdateSerializer(StrictInput, ProductFieldsMixin):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, partial=True, **kwargs)

    @extend_schema(
        operation_id="catalog_merchant_products_retrieve",
        responses={200: OpenApiResponse(description="The product document with stock and your permissions.")},
        summary="One of my products",
    )
    def get(self, request: Request, product_id: int) -> Response:
        reject_query_params(request)
        product = _product_or_404(request, product_id)
        return Response(merchant_product_document(product, request))

    @extend_schema(
        operation_id="catalog_merchant_products_update",
        summary="Change a product",
        request=UpdateSerializer,
        responses={200: OpenApiResponse(description="The product."), 400: OpenApiResponse()},
    )
    def patch(self, request: Request, product_id: int) -> Response:
        product = _product_or_404(request, product_id, permissions.CHANGE)
        body = self.UpdateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        product = services.product_update(product=product, data=_product_changes(body.validated_data))
        return Response(merchant_product_document(product, request))


class MerchantProductDeactivateApi(APIView):
    permission_classes = [permissions.IsMerchantOrAdmin]

    @extend_schema(
        operation_id="catalog_merchant_products_deactivate",
        responses={200: OpenApiResponse(description="The product document.")},
        request=None,
        summary="Take off sale",
    )
    def post(self, request: Request, product_id: int) -> Response:
        product = _product_or_404(request, product_id, permissions.CHANGE)
        product = services.product_deactivate(product=product)
        return Response(merchant_product_document(product, request))


class MerchantStockAdjustApi(APIView):
    permission_classes = [permissions.IsMerchantOrAdmin]

    @extend_schema_serializer(component_name="MerchantStockAdjustInput")
    class InputSerializer(StrictInput):
        delta = serializers.IntegerField(min_value=-10_000_000, max_value=10_000_000)
        reason = serializers.CharField(max_length=500)

    @extend_schema(
        operation_id="catalog_merchant_stock_adjust",
        summary="Add or remove on-hand units, with a reason",
        request=InputSerializer,
        responses={
            200: OpenApiResponse(description="{on_hand, reserved, available}"),
            400: OpenApiResponse(),
        },
    )
    def post(self, request: Request, product_id: int) -> Response:
        product = _product_or_404(request, product_id, permissions.ADJUST_STOCK)
        body = self.InputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        stock = inventory_services.stock_adjust(
            product_id=product.pk,
            delta=body.validated_data["delta"],
            note=body.validated_data["reason"],
            actor=_principal_id(request),
        )
        return Response({"on_hand": stock.on_hand, "reserved": stock.reserved, "available": stock.available})


class MerchantStockMovementListApi(APIView):
    permission_classes = [permissions.IsMerchantOrAdmin]

    class FilterSerializer(StrictQueryParams):
        page = serializers.IntegerField(required=False, min_value=1)
        page_size = serializers.IntegerField(required=False, min_value=1, max_value=100)

    @extend_schema(
        operation_id="catalog_merchant_stock_movements",
        responses={200: OpenApiResponse(description="A page of ledger rows, newest first.")},
        summary="The stock ledger of a product",
    )
    def get(self, request: Request, product_id: int) -> Response:
        self.FilterSerializer(data=request.query_params).is_valid(raise_exception=True)
        product = _product_or_404(request, product_id)
        paginator = BazaarPagination()
        page = paginator.paginate_queryset(
            StockMovement.objects.filter(product=product).order_by("-id"), request, view=self
        )
        return paginator.get_paginated_response(
            [
                {
                    "id": m.pk,
                    "delta_on_hand": m.delta_on_hand,
                    "delta_reserved": m.delta_reserved,
                    "on_hand_after": m.on_hand_after,
                    "reserved_after": m.reserved_after,
                    "reason": m.reason,
                    "note": m.note,
                    "order_id": m.order_id,
                    "actor": m.actor,
                    "created_at": m.created_at,
                }
                for m in page
            ]
        )


def merchant_document(merchant: Merchant, role: str | None) -> dict[str, Any]:
    return {
        "id": merchant.pk,
        "name": merchant.name,
        "slug": merchant.slug,
        "is_active": merchant.is_active,
        "role": role,
    }


class MerchantListCreateApi(APIView):
    permission_classes = [permissions.IsMerchantOrAdmin]

    @extend_schema_serializer(component_name="MerchantCreateInput")
    class InputSerializer(StrictInput):
        name = serializers.CharField(max_length=200)
        slug = serializers.SlugField(max_length=100)
        owner_id = serializers.UUIDField()

    @extend_schema(
        operation_id="catalog_merchant_merchants_list",
        responses={200: OpenApiResponse(description="{results: [{id, name, slug, is_active, role}]}")},
        summary="The merchants I work for",
    )
    def get(self, request: Request) -> Response:
        reject_query_params(request)
        roles = dict(MerchantMember.objects.filter(user_id=_principal_id(request)).values_list("merchant_id", "role"))
        merchants = Merchant.objects.all() if _is_admin(request) else Merchant.objects.filter(pk__in=roles)
        return Response({"results": [merchant_document(m, roles.get(m.pk)) for m in merchants]})

    @extend_schema(
        operation_id="catalog_merchant_merchants_create",
        summary="Open a merchant (platform admins)",
        request=InputSerializer,
        responses={201: OpenApiResponse(description="The merchant.")},
    )
    def post(self, request: Request) -> Response:
        if not IsAdmin().has_permission(request, self):
            raise PermissionDenied("Only platform admins open merchants.")
        body = self.InputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        merchant = services.merchant_create(
            name=body.validated_data["name"],
            slug=body.validated_data["slug"],
            owner_id=str(body.validated_data["owner_id"]),
        )
        return Response(merchant_document(merchant, None), status=status.HTTP_201_CREATED)


class MerchantMemberAddApi(APIView):
    permission_classes = [permissions.IsMerchantOrAdmin]

    @extend_schema_serializer(component_name="MerchantMemberAddInput")
    class InputSerializer(StrictInput):
        user_id = serializers.UUIDField()
        role = serializers.ChoiceField(choices=MerchantMember.Role.choices)

    @extend_schema(
        operation_id="catalog_merchant_members_add",
        summary="Add a colleague to a merchant (owners)",
        request=InputSerializer,
        responses={201: OpenApiResponse(description="{merchant_id, user_id, role}")},
    )
    def post(self, request: Request, merchant_id: int) -> Response:
        merchant = _merchant_or_404(request, merchant_id, owner=True)
        body = self.InputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        member = services.merchant_member_add(
            merchant=merchant, user_id=str(body.validated_data["user_id"]), role=body.validated_data["role"]
        )
        return Response(
            {"merchant_id": merchant.pk, "user_id": member.user_id, "role": member.role},
            status=status.HTTP_201_CREATED,
        )


@extend_schema_serializer(component_name="MerchantGrantInput")
class GrantInput(StrictInput):
    user_id = serializers.UUIDField()
    product_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=MAX_ID), min_length=1, max_length=500
    )
    permissions = serializers.ListField(
        child=serializers.ChoiceField(choices=GRANTABLE), min_length=1, max_length=len(GRANTABLE)
    )


def _grant_targets(merchant: Merchant, data: dict[str, Any]) -> tuple[str, list[Product]]:
    user_id = str(data["user_id"])
    if permissions.member_role(user_id=user_id, merchant_id=merchant.pk) is None:
        raise ValidationError({"user_id": ["Not a member of this merchant; add them first."]})
    wanted = set(data["product_ids"])
    products = list(Product.objects.filter(merchant=merchant, pk__in=wanted))
    missing = sorted(wanted - {product.pk for product in products})
    if missing:
        raise ValidationError({"product_ids": [f"Not products of this merchant: {missing}."]})
    return user_id, products


class MerchantGrantListCreateApi(APIView):
    permission_classes = [permissions.IsMerchantOrAdmin]

    @extend_schema(
        operation_id="catalog_merchant_grants_list",
        responses={200: OpenApiResponse(description="{results: [{user_id, product_id, permissions}]}")},
        summary="Who holds which product rights",
    )
    def get(self, request: Request, merchant_id: int) -> Response:
        reject_query_params(request)
        merchant = _merchant_or_404(request, merchant_id, owner=True)
        rows = (
            ProductUserObjectPermission.objects.filter(content_object__merchant=merchant)
            .select_related("user", "permission")
            .order_by("user__username", "content_object_id", "permission__codename")
        )
        grants: dict[tuple[str, int], list[str]] = {}
        for row in rows:
            grants.setdefault((row.user.username, row.content_object_id), []).append(row.permission.codename)
        return Response(
            {
                "results": [
                    {"user_id": user_id, "product_id": product_id, "permissions": codenames}
                    for (user_id, product_id), codenames in grants.items()
                ]
            }
        )

    @extend_schema(
        operation_id="catalog_merchant_grants_create",
        summary="Grant a colleague rights on some products (owners)",
        request=GrantInput,
        responses={201: OpenApiResponse(description="The grant as stored.")},
    )
    def post(self, request: Request, merchant_id: int) -> Response:
        merchant = _merchant_or_404(request, merchant_id, owner=True)
        body = GrantInput(data=request.data)
        body.is_valid(raise_exception=True)
        user_id, products = _grant_targets(merchant, body.validated_data)
        services.product_grants_set(
            merchant=merchant,
            user_id=user_id,
            products=products,
            permissions_to_grant=body.validated_data["permissions"],
        )
        return Response(
            {
                "user_id": user_id,
                "products": [
                    {
                        "product_id": p.pk,
                        "permissions": permissions.user_product_permissions(user_id=user_id, product=p),
                    }
                    for p in sorted(products, key=lambda p: p.pk)
                ],
            },
            status=status.HTTP_201_CREATED,
        )


class MerchantGrantRevokeApi(APIView):
    permission_classes = [permissions.IsMerchantOrAdmin]

    @extend_schema(
        operation_id="catalog_merchant_grants_revoke",
        summary="Take product rights back from a colleague (owners)",
        request=GrantInput,
        responses={204: OpenApiResponse(description="Revoked.")},
    )
    def post(self, request: Request, merchant_id: int) -> Response:
        merchant = _merchant_or_404(request, merchant_id, owner=True)
        body = GrantInput(data=request.data)
        body.is_valid(raise_exception=True)
        user_id, products = _grant_targets(merchant, body.validated_data)
        services.product_grants_revoke(
            merchant=merchant,
            user_id=user_id,
            products=products,
            permissions_to_revoke=body.validated_data["permissions"],
        )
        return Response(status=status.HTTP_204_NO_CONTENT)
