from django.urls import include, path

from bazaar_common.urls import handler404, handler500, platform_urlpatterns

urlpatterns = [
    path("", include("gateway.routing.urls")),
    *platform_urlpatterns(),
]

__all__ = ["handler404", "handler500", "urlpatterns"]
