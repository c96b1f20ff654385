from django.urls import path
from drf_spectacular.views import SpectacularRedocView, SpectacularSwaggerView

from gateway.routing import apis

api_urlpatterns = [
    path("api/v1/gateway/services", apis.GatewayServicesApi.as_view(), name="gateway-services"),
    path("api/v1/gateway/routes", apis.GatewayRoutesApi.as_view(), name="gateway-routes"),
]

urlpatterns = [
    *api_urlpatterns,
    path("api/schema/openapi.json", apis.openapi_view, name="gateway-openapi"),
    path(
        "api/docs",
        SpectacularSwaggerView.as_view(url_name="gateway-openapi", authentication_classes=[]),
        name="gateway-docs",
    ),
    path(
        "api/redoc",
        SpectacularRedocView.as_view(url_name="gateway-openapi", authentication_classes=[]),
        name="gateway-redoc",
    ),
]
