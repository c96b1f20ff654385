from django.urls import include, path

from bazaar_common.urls import handler404, handler500, platform_urlpatterns
from profile_service.profiles.urls import api_urlpatterns, internal_urlpatterns

urlpatterns = [
    path("api/v1/profiles/", include(api_urlpatterns)),
    path("internal/v1/profiles/", include(internal_urlpatterns)),
    *platform_urlpatterns(),
]

__all__ = ["handler404", "handler500", "urlpatterns"]
