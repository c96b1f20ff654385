"""Calls to other services' internal APIs, returning plain data (never their models).

All go through ``bazaar_common.http.service_client()`` (discovery, service token, timeouts,
breakers). A service that is down or answers unexpectedly surfaces as
:class:`~bazaar_common.errors.ServiceUnavailable`, so a caller never mistakes a failure for an
empty answer.
"""

from __future__ import annotations

import uuid
from typing import Any

from rest_framework.exceptions import Throttled

from bazaar_common.errors import ServiceUnavailable
from bazaar_common.http import ServiceResponse, service_client

AUTH = "auth"
ORDERS = "orders"


def _unexpected(service: str, response: ServiceResponse) -> ServiceUnavailable:
    return ServiceUnavailable(f"The {service} service answered {response.status} unexpectedly.")


def auth_account_get(*, user_id: uuid.UUID) -> dict[str, Any]:
    """The account auth holds for ``user_id`` (id, email, roles, is_active, dates)."""
    response = service_client().request(AUTH, "GET", f"/internal/v1/auth/users/{user_id}")
    if response.status != 200:
        raise _unexpected(AUTH, response)
    return response.json()


def auth_password_verify(*, user_id: uuid.UUID, password: str) -> bool:
    """Whether ``password`` is the user's password, as the auth service checks it."""
    response = service_client().request(
        AUTH, "POST", f"/internal/v1/auth/users/{user_id}/verify-password", json={"password": password}
    )
    if response.status == 204:
        return True
    if response.status in (403, 404):
        return False
    if response.status == 429:
        # Auth limits password attempts; pass its verdict and wait time on to the caller.
        raise Throttled(wait=_retry_after(response))
    raise _unexpected(AUTH, response)


def orders_list_for_customer(*, customer_id: uuid.UUID) -> list[dict[str, Any]]:
    """Every order of ``customer_id`` as the order service documents it."""
    response = service_client().request(ORDERS, "GET", "/internal/v1/orders", query={"customer_id": str(customer_id)})
    if response.status != 200:
        raise _unexpected(ORDERS, response)
    body = response.json()
    if not isinstance(body, dict) or not isinstance(body.get("results"), list):
        raise ServiceUnavailable("The orders service answered without a list of results.")
    return body["results"]


def _retry_after(response: ServiceResponse) -> int:
    headers = {key.lower(): value for key, value in response.headers.items()}
    try:
        return max(1, int(headers.get("retry-after", "60")))
    except ValueError:
        return 60
