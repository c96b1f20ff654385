"""The gateway's admin site: Django's, plus a status page (routes, services, instances, breakers)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path

from gateway.routing import selectors


class GatewayAdminSite(admin.AdminSite):
    site_header = "Bazaar gateway"
    site_title = "Bazaar gateway"
    index_template = "gateway/admin_index.html"

    def get_urls(self) -> list[Any]:
        return [
            path("gateway/status/", self.admin_view(self.status_view), name="gateway-status"),
            *super().get_urls(),
        ]

    def status_view(self, request: HttpRequest) -> HttpResponse:
        context = {
            **self.each_context(request),
            "title": "Gateway status",
            "overview": selectors.gateway_services_overview(),
            "routes": selectors.gateway_routes(),
        }
        return TemplateResponse(request, "gateway/status.html", context)
