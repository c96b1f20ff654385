"""Admin-only middleware that API requests skip.

Sessions, CSRF, the session-backed user, messages and static files serve the Django admin (and
the pages beside it); API and machine paths authenticate with bearer tokens through DRF and never
read a session. Running that stack on every API request cost about half the CPU of a cached
catalog read (a session lookup, CSRF token handling, lazy user objects, cookies), so
:class:`AdminStackMiddleware` holds the admin stack as a branch of its own: requests under
:data:`LEAN_PREFIXES` go straight on, every other request runs the full stack, in the same order
as if its classes were listed in ``MIDDLEWARE`` directly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import MiddlewareNotUsed
from django.core.handlers.exception import convert_exception_to_response
from django.http import HttpRequest, HttpResponse
from django.utils.module_loading import import_string

# Paths that never need a session: the public and internal APIs, probes and metrics.
LEAN_PREFIXES = ("/api/", "/internal/", "/healthz", "/readyz", "/metrics")


def is_lean_path(path: str) -> bool:
    return path.startswith(LEAN_PREFIXES)


class AdminStackMiddleware:
    """Runs ``settings.ADMIN_MIDDLEWARE`` for admin requests only (see the module docstring).

    Django collects ``process_view``/``process_exception``/``process_template_response`` hooks
    from the classes in ``MIDDLEWARE``; the branch's own classes are not listed there, so this
    class forwards those hooks to them, for the requests that went through the branch.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self._view_hooks: list[Any] = []
        self._exception_hooks: list[Any] = []
        self._template_hooks: list[Any] = []
        handler: Callable[[HttpRequest], Any] = get_response
        for path in reversed(settings.ADMIN_MIDDLEWARE):
            try:
                instance = import_string(path)(handler)
            except MiddlewareNotUsed:
                continue
            if hasattr(instance, "process_view"):
                self._view_hooks.insert(0, instance.process_view)
            if hasattr(instance, "process_exception"):
                self._exception_hooks.append(instance.process_exception)
            if hasattr(instance, "process_template_response"):
                self._template_hooks.append(instance.process_template_response)
            handler = convert_exception_to_response(instance)
        self.admin_chain = handler

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if is_lean_path(request.path_info):
            return self.get_response(request)
        request._bazaar_admin_stack = True  # type: ignore[attr-defined]
        return self.admin_chain(request)

    def process_view(self, request: HttpRequest, view: Any, args: Any, kwargs: Any) -> HttpResponse | None:
        if not getattr(request, "_bazaar_admin_stack", False):
            return None
        for hook in self._view_hooks:
            response = hook(request, view, args, kwargs)
            if response is not None:
                return response
        return None

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not getattr(request, "_bazaar_admin_stack", False):
            return None
        for hook in self._exception_hooks:
            response = hook(request, exception)
            if response is not None:
                return response
        return None

    def process_template_response(self, request: HttpRequest, response: Any) -> Any:
        if getattr(request, "_bazaar_admin_stack", False):
            for hook in self._template_hooks:
                response = hook(request, response)
        return response
