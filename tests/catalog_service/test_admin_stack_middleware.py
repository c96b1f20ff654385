"""API paths skip the admin's middleware (sessions, CSRF, user, messages); admin paths keep it."""

from __future__ import annotations

import pytest
from django.http import HttpResponse
from django.test import Client, RequestFactory

from bazaar_common.middleware import AdminStackMiddleware

pytestmark = pytest.mark.django_db


def _seen_by_view(path: str) -> object:
    seen = {}

    def view(request):
        seen["request"] = request
        return HttpResponse("ok")

    AdminStackMiddleware(view)(RequestFactory().get(path))
    return seen["request"]


@pytest.mark.parametrize("path", ["/api/v1/catalog/products", "/internal/v1/catalog/products", "/readyz", "/metrics"])
def test_api_and_probe_paths_reach_the_view_without_session_or_user(path):
    request = _seen_by_view(path)

    assert not hasattr(request, "session")
    assert not hasattr(request, "user")
    assert not hasattr(request, "_messages")


def test_admin_paths_get_session_user_and_messages():
    request = _seen_by_view("/admin/")

    assert hasattr(request, "session")
    assert request.user.is_anonymous
    assert hasattr(request, "_messages")


def test_admin_login_without_csrf_token_is_still_refused():
    client = Client(enforce_csrf_checks=True)

    response = client.post("/admin/login/", {"username": "x", "password": "y"})

    assert response.status_code == 403


def test_admin_login_form_sets_the_csrf_cookie_and_accepts_its_token():
    client = Client(enforce_csrf_checks=True)
    form = client.get("/admin/login/")
    token = form.cookies["bazaar_catalog_csrftoken"].value

    response = client.post("/admin/login/", {"username": "x", "password": "y", "csrfmiddlewaretoken": token})

    assert response.status_code == 200  # the form again, with "enter a correct username", not 403
    assert b"csrfmiddlewaretoken" in response.content


def test_api_answer_sets_no_cookie(client):
    response = client.get("/api/v1/catalog/products")

    assert response.status_code == 200
    assert not response.cookies
