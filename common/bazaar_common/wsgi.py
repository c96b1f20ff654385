"""The WSGI entry point of a service: Django, observability, and registration in discovery."""

from __future__ import annotations

import os

from django.core.handlers.wsgi import WSGIHandler


def make_wsgi_application(*, service: str, package: str) -> WSGIHandler:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", f"{package}.config.settings")
    from django.core.wsgi import get_wsgi_application

    from bazaar_common.discovery import start_heartbeat
    from bazaar_common.observability import init_observability

    init_observability(service)
    application = get_wsgi_application()
    # Registered only once Django is loaded, so the gateway never routes to a half-started process.
    start_heartbeat(service)
    return application
