from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class RoutingConfig(AppConfig):
    default = True
    name = "gateway.routing"
    label = "routing"
    default_auto_field = "django.db.models.BigAutoField"


class GatewayAdminConfig(admin_apps.AdminConfig):
    default = False
    """The Django admin with the gateway's status page added (routes, services, breakers)."""

    default_site = "gateway.routing.admin_site.GatewayAdminSite"
