"""WSGI entry: the proxy for routed API paths, Django for the rest (admin, docs, health)."""

from bazaar_common.wsgi import make_wsgi_application

django_application = make_wsgi_application(service="gateway", package="gateway")

from gateway.routing.runtime import build_application  # noqa: E402  (needs Django set up)

application = build_application(django_application)
