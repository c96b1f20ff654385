"""The gateway's own endpoints (served by Django, not proxied)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, JsonResponse
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from bazaar_common.auth.permissions import IsAdmin
from gateway.routing import selectors


class GatewayServicesApi(APIView):
    """Services, instances, health, last heartbeat, in-flight requests and circuit state."""

    permission_classes = [IsAdmin]

    @extend_schema(
        operation_id="gateway_services",
        tags=["gateway"],
        responses=inline_serializer(
            "GatewayServices",
            {
                "registry": serializers.DictField(),
                "balancer": serializers.CharField(),
                "retry_budget_balance": serializers.FloatField(),
                "services": serializers.ListField(child=serializers.DictField()),
                "routes": serializers.ListField(child=serializers.DictField()),
            },
        ),
    )
    def get(self, request: Request) -> Response:
        overview = selectors.gateway_services_overview()
        overview["routes"] = selectors.gateway_routes()
        return Response(overview)


class GatewayRoutesApi(APIView):
    """The routing table and each route's policy (public: it is documentation)."""

    permission_classes = [AllowAny]
    authentication_classes: list[Any] = []

    @extend_schema(
        operation_id="gateway_routes",
        tags=["gateway"],
        responses=inline_serializer("GatewayRoutes", {"routes": serializers.ListField(child=serializers.DictField())}),
    )
    def get(self, request: Request) -> Response:
        return Response({"routes": selectors.gateway_routes()})


def gateway_document() -> dict[str, Any]:
    """The gateway's own endpoints, documented by drf-spectacular like a service's."""
    from gateway.routing.urls import api_urlpatterns

    return SchemaGenerator(patterns=api_urlpatterns).get_schema(request=None, public=True)


def openapi_view(request: HttpRequest) -> JsonResponse:
    """The whole public API as one OpenAPI document, assembled from the services' schemas."""
    document = selectors.openapi_document(gateway_document())
    return JsonResponse(document, json_dumps_params={"ensure_ascii": False})
