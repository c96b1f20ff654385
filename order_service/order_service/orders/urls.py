from django.urls import path

from order_service.orders import apis

api_urlpatterns = [
    path("cart", apis.CartApi.as_view(), name="cart"),
    path("cart/items", apis.CartItemAddApi.as_view(), name="cart-items"),
    path("cart/items/<int:product_id>", apis.CartItemApi.as_view(), name="cart-item"),
    path("orders", apis.OrderListCheckoutApi.as_view(), name="orders"),
    path("orders/<uuid:order_id>", apis.OrderDetailApi.as_view(), name="order-detail"),
    path("orders/<uuid:order_id>/pay", apis.OrderPayApi.as_view(), name="order-pay"),
    path("orders/<uuid:order_id>/cancel", apis.OrderCancelApi.as_view(), name="order-cancel"),
    path("orders/<uuid:order_id>/ship", apis.OrderShipApi.as_view(), name="order-ship"),
    path("orders/<uuid:order_id>/deliver", apis.OrderDeliverApi.as_view(), name="order-deliver"),
]

internal_urlpatterns = [
    path("orders", apis.InternalCustomerOrdersApi.as_view(), name="internal-orders"),
]
