"""Response headers every service sets the same way."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def is_private(request: HttpRequest) -> bool:
    """Answers to a caller with credentials (a token, a session) or to a write are about that caller:
    tokens, personal data, their orders. Public catalog reads are neither and stay cacheable."""
    return (
        "HTTP_AUTHORIZATION" in request.META
        or request.method not in SAFE_METHODS
        or settings.SESSION_COOKIE_NAME in request.COOKIES
    )


class PrivateNoStoreMiddleware:
    """``Cache-Control: no-store`` on private answers unless the view chose a policy itself, so no
    browser or shared cache keeps a token or a customer's data."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if not response.has_header("Cache-Control") and is_private(request):
            response["Cache-Control"] = "no-store"
        return response
