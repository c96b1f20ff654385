from django.urls import path

from catalog_service.products import apis, internal_apis, merchant_apis

public_urlpatterns = [
    path("products", apis.ProductListApi.as_view(), name="product-list"),
    path("products/<int:product_id>", apis.ProductDetailApi.as_view(), name="product-detail"),
    path("categories", apis.CategoryTreeApi.as_view(), name="category-tree"),
    path("merchant/merchants", merchant_apis.MerchantListCreateApi.as_view(), name="merchant-merchants"),
    path(
        "merchant/merchants/<int:merchant_id>/members",
        merchant_apis.MerchantMemberAddApi.as_view(),
        name="merchant-members",
    ),
    path(
        "merchant/merchants/<int:merchant_id>/grants",
        merchant_apis.MerchantGrantListCreateApi.as_view(),
        name="merchant-grants",
    ),
    path(
        "merchant/merchants/<int:merchant_id>/grants/revoke",
        merchant_apis.MerchantGrantRevokeApi.as_view(),
        name="merchant-grants-revoke",
    ),
    path("merchant/products", merchant_apis.MerchantProductListCreateApi.as_view(), name="merchant-products"),
    path(
        "merchant/products/<int:product_id>",
        merchant_apis.MerchantProductDetailApi.as_view(),
        name="merchant-product",
    ),
    path(
        "merchant/products/<int:product_id>/deactivate",
        merchant_apis.MerchantProductDeactivateApi.as_view(),
        name="merchant-product-deactivate",
    ),
    path(
        "merchant/products/<int:product_id>/stock-adjustments",
        merchant_apis.MerchantStockAdjustApi.as_view(),
        name="merchant-stock-adjust",
    ),
    path(
        "merchant/products/<int:product_id>/stock-movements",
        merchant_apis.MerchantStockMovementListApi.as_view(),
        name="merchant-stock-movements",
    ),
]

internal_urlpatterns = [
    path("products", internal_apis.InternalProductListApi.as_view(), name="internal-products"),
    path("reservations", internal_apis.InternalReservationListApi.as_view(), name="internal-reservations"),
    path(
        "users/<str:user_id>/merchants",
        internal_apis.InternalUserMerchantsApi.as_view(),
        name="internal-user-merchants",
    ),
]
