from django.urls import include, path

from bazaar_common.urls import handler404, handler500, platform_urlpatterns
from order_service.orders import dashboard
from order_service.orders.urls import api_urlpatterns, internal_urlpatterns

urlpatterns = [
    path("api/v1/", include(api_urlpatterns)),
    path("internal/v1/", include(internal_urlpatterns)),
    # Before the admin's own patterns, so /admin/dashboard/ is not taken for a model page.
    path("admin/dashboard/", dashboard.dashboard_view, name="orders-dashboard"),
    *platform_urlpatterns(),
]

__all__ = ["handler404", "handler500", "urlpatterns"]
