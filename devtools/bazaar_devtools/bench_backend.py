"""The backend of the gateway benchmark: a Django + DRF service answering a product list.

No database (so the benchmark measures HTTP, Django and the gateway, not PostgreSQL), but the
same stack as a service: Django's request handling, the request-id middleware, DRF's view, JSON
rendering. Served by granian exactly like a service instance.

With ``BENCH_BACKEND_AUTH=1`` it authenticates as every service does (the shared
``JWTAuthentication``: local RS256 check and the revocation lookup in ``REVOCATION_REDIS_URL``) and
refuses anonymous requests; :mod:`bazaar_devtools.bench_revocation` uses that.
"""

from __future__ import annotations

import os
import time
from typing import Any

import django
from django.conf import settings

AUTHENTICATED = os.environ.get("BENCH_BACKEND_AUTH", "0") == "1"

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
        REDIS_URL=os.environ.get("REDIS_URL", ""),
        REVOCATION_REDIS_URL=os.environ.get("REVOCATION_REDIS_URL", ""),
        REST_FRAMEWORK={
            "DEFAULT_AUTHENTICATION_CLASSES": (
                ["bazaar_common.auth.authentication.JWTAuthentication"] if AUTHENTICATED else []
            ),
            "DEFAULT_PERMISSION_CLASSES": (["rest_framework.permissions.IsAuthenticated"] if AUTHENTICATED else []),
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
    def get(self, request: Any, path: str = "") -> Any:
        if DELAY_SECONDS:
            time.sleep(DELAY_SECONDS)
        return Response({"count": len(PRODUCTS), "next": None, "previous": None, "results": PRODUCTS})


urlpatterns = [re_path(r"^(?P<path>.*)$", ProductsApi.as_view())]
application = get_wsgi_application()
