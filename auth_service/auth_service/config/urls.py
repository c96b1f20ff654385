from django.urls import include, path

from auth_service.accounts.urls import internal_urlpatterns, public_urlpatterns
from bazaar_common.urls import handler404, handler500, platform_urlpatterns

urlpatterns = [
    *platform_urlpatterns(),
    path("api/v1/auth/", include((public_urlpatterns, "auth"))),
    path("internal/v1/auth/", include((internal_urlpatterns, "auth-internal"))),
]

__all__ = ["handler404", "handler500", "urlpatterns"]
