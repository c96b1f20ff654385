"""Calls to other services' internal APIs, returning plain data (never their models).

All go through ``bazaar_common.http.service_client()`` (discovery, service token, timeouts,
breakers). A service that is down or answers unexpectedly surfaces as
:class:`~bazaar_common.errors.ServiceUnavailable`, so a caller never mistakes a failure for an
empty answer.
"""

from __future__ import annotations

import uuid

from bazaar_common.contracts import http as internal
from bazaar_common.domain import TooManyRequests
from bazaar_common.errors import ServiceUnavailable
from bazaar_common.http import ServiceResponse, service_client


def _unexpected(service: str, response: ServiceResponse) -> ServiceUnavailable:
    return ServiceUnavailable(f"The {service} service answered {response.status} unexpectedly.")


def auth_account_get(*, user_id: uuid.UUID) -> internal.Account:
    """The account auth holds for ``user_id`` (id, email, roles, is_active, dates)."""
    call = internal.AUTH_ACCOUNT
    response = service_client().request(call.service, call.method, call.url(user_id=user_id))
    if response.status != 200:
        raise _unexpected(call.service, response)
    return response.parse(internal.Account, service=call.service)


def auth_password_verify(*, user_id: uuid.UUID, password: str) -> bool:
    """Whether ``password`` is the user's password, as the auth service checks it."""
    call = internal.PASSWORD_CHECK
    try:
        body = internal.PasswordCheckRequest(password=password)
    except ValueError:
        return False  # empty or longer than any password auth accepts
    response = service_client().request(call.service, call.method, call.url(user_id=user_id), json=body.to_json())
    if response.status == 204:
        return True
    if response.status in (403, 404):
        return False
    if response.status == 429:
        # Auth limits password attempts; pass its verdict and wait time on to the caller.
        raise TooManyRequests("Too many password attempts. Try again later.", retry_after=_retry_after(response))
    raise _unexpected(call.service, response)


def orders_list_for_customer(*, customer_id: uuid.UUID) -> list[internal.OrderDocument]:
    """Every order of ``customer_id`` as the order service documents it."""
    call = internal.ORDERS_OF_CUSTOMER
    query = internal.CustomerOrdersQuery(customer_id=customer_id).to_query()
    response = service_client().request(call.service, call.method, call.path, query=query)
    if response.status != 200:
        raise _unexpected(call.service, response)
    return response.parse(internal.CustomerOrders, service=call.service).results


def _retry_after(response: ServiceResponse) -> int:
    headers = {key.lower(): value for key, value in response.headers.items()}
    try:
        return max(1, int(headers.get("retry-after", "60")))
    except ValueError:
        return 60
