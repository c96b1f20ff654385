"""URL patterns every service exposes besides its API."""

from __future__ import annotations

from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path
from drf_spectacular.views import SpectacularAPIView

import bazaar_common.health


def platform_urlpatterns() -> list[URLPattern | URLResolver]:
    """Health, the OpenAPI schema (read by the gateway) and the Django admin.

    Metrics are not here: every process serves them on its own ``METRICS_PORT`` listener
    (:mod:`bazaar_common.metrics`), so that the public port never exposes them.
    """
    return [
        path("", include(bazaar_common.health)),
        path("schema/openapi.json", SpectacularAPIView.as_view(), name="openapi-schema"),
        path("admin/", admin.site.urls),
    ]


handler404 = "bazaar_common.errors.json_404"
handler500 = "bazaar_common.errors.json_500"
