from django.urls import include, path

from bazaar_common.urls import handler404, handler500, platform_urlpatterns
from catalog_service.products.urls import internal_urlpatterns, public_urlpatterns

urlpatterns = [
    *platform_urlpatterns(),
    path("api/v1/catalog/", include((public_urlpatterns, "catalog"))),
    path("internal/v1/catalog/", include((internal_urlpatterns, "catalog-internal"))),
]

__all__ = ["handler404", "handler500", "urlpatterns"]
