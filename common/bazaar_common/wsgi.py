"""The WSGI entry point of a service: Django and observability.

Registration in discovery is the server's job (:mod:`bazaar_common.serve`), once per instance.
"""

from __future__ import annotations

import os

from django.core.handlers.wsgi import WSGIHandler


def make_wsgi_application(*, service: str, package: str) -> WSGIHandler:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", f"{package}.config.settings")
    from django.core.wsgi import get_wsgi_application

    from bazaar_common.observability import init_observability

    init_observability(service)
    return get_wsgi_application()
