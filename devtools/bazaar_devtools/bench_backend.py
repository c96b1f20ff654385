"""The backend of the gateway benchmark: a Django + DRF service answering a product list.

No database (so the benchmark measures HTTP, Django and the gateway, not PostgreSQL), but the
same stack as a service: Django's request handling, the request-id middleware, DRF's view, JSON
rendering. Served by granian exactly like a service instance.
"""

from __future__ import annotations

import os
import time

import django
from django.conf import settings

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="bench-only-not-a-secret",
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF=__name__,
        INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "rest_framework"],
        MIDDLEWARE=[
            "bazaar_common.request_id.RequestIdMiddleware",
            "django.middleware.security.SecurityMiddleware",
            "django.middleware.common.CommonMiddleware",
        ],
        DATABASES={},
        REST_FRAMEWORK={
            "DEFAULT_AUTHENTICATION_CLASSES": [],
            "DEFAULT_PERMISSION_CLASSES": [],
            "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
            "UNAUTHENTICATED_USER": None,
        },
        LOGGING_CONFIG=None,
    )
    django.setup()

from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.urls import re_path  # noqa: E402
from rest_framework.response import Response  # noqa: E402
from rest_framework.views import APIView  # noqa: E402

PRODUCTS = [
    {
        "id": index,
        "sku": f"SKU-{index:04d}",
        "name": f"Product {index}",
        "price": f"{10 + index}.50",
        "currency": "EUR",
        "available": 100 - index,
    }
    for index in range(1, 21)
]


# A deliberately slower instance (to compare load balancers on unequal instances).
DELAY_SECONDS = float(os.environ.get("BENCH_BACKEND_DELAY_MS", "0")) / 1000


class ProductsApi(APIView):
    def get(self, request, path: str = ""):  # type: ignore[no-untyped-def]
        if DELAY_SECONDS:
            time.sleep(DELAY_SECONDS)
        return Response({"count": len(PRODUCTS), "next": None, "previous": None, "results": PRODUCTS})


urlpatterns = [re_path(r"^(?P<path>.*)$", ProductsApi.as_view())]
application = get_wsgi_application()
