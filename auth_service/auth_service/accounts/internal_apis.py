"""Internal API under ``/internal/v1/auth/``: service tokens only (the gateway never routes here).

Bodies in and out are the contract classes of :mod:`bazaar_common.contracts.http`, the same ones
the callers (``bazaar_common.auth.service_tokens``, ``admin_backend``, profiles' ``remote.py``) use.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from auth_service.accounts import selectors, services
from auth_service.accounts.apis import CredentialApi
from bazaar_common.auth.client_address import client_address
from bazaar_common.auth.permissions import IsService
from bazaar_common.contracts import http as internal
from bazaar_common.domain import Forbidden, NotFound
from bazaar_common.drf import parse_body


class ServiceTokenApi(CredentialApi):
    """A service exchanges its own credential for a short-lived token with role ``service``."""

    permission_classes = [AllowAny]

    # Internal endpoints stay out of the public document the gateway assembles.
    @extend_schema(exclude=True)
    def post(self, request: Request) -> Response:
        body = parse_body(internal.ServiceTokenRequest, request.data)
        access, expires_in = services.service_token_issue(
            client_id=body.client_id, client_secret=body.client_secret, client_ip=client_address(request)
        )
        return Response(internal.ServiceToken(access=access, expires_in=expires_in).to_json())


class AdminLoginApi(APIView):
    """Credentials typed into some service's Django admin; limited exactly like the API login."""

    permission_classes = [IsService]

    @extend_schema(exclude=True)
    def post(self, request: Request) -> Response:
        body = parse_body(internal.AdminLoginRequest, request.data)
        # The address of the person at the admin form, as the calling service saw it.
        address = str(body.client_ip) if body.client_ip else client_address(request)
        user = services.user_authenticate(email=body.email, password=body.password, client_ip=address)
        answer = internal.StaffIdentityAnswer(user_id=user.pk, email=user.email, roles=user.role_list)
        return Response(answer.to_json())


class InternalUserDetailApi(APIView):
    permission_classes = [IsService]

    @extend_schema(exclude=True)
    def get(self, request: Request, user_id: str) -> Response:
        user = selectors.user_get(user_id=user_id)
        if user is None:
            raise NotFound("No such user.")
        return Response(selectors.user_account(user).to_json())


class VerifyPasswordApi(APIView):
    """Another service confirms a user's password before something drastic (e.g. erasure)."""

    permission_classes = [IsService]

    @extend_schema(exclude=True)
    def post(self, request: Request, user_id: str) -> Response:
        body = parse_body(internal.PasswordCheckRequest, request.data)
        user = selectors.user_get(user_id=user_id)
        if user is None or not user.is_active:
            raise Forbidden("The password is not correct.")
        services.password_confirm(user=user, password=body.password, client_ip=client_address(request))
        return Response(status=status.HTTP_204_NO_CONTENT)
