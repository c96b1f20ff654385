"""Internal API under ``/internal/v1/auth/``: service tokens only (the gateway never routes here)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from auth_service.accounts import selectors, services
from auth_service.accounts.apis import PASSWORD_FIELD, CredentialApi, UserOutputSerializer
from bazaar_common.auth.client_address import client_address
from bazaar_common.auth.permissions import IsService
from bazaar_common.errors import problem_response


class ServiceTokenApi(CredentialApi):
    """A service exchanges its own credential for a short-lived token with role ``service``."""

    permission_classes = [AllowAny]

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "ServiceTokenInput"

        client_id = serializers.CharField(max_length=64)
        client_secret = serializers.CharField(max_length=512, trim_whitespace=False)

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "ServiceTokenOutput"

        access = serializers.CharField()
        expires_in = serializers.IntegerField()

    @extend_schema(request=InputSerializer, responses={200: OutputSerializer}, tags=["internal"])
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        access, expires_in = services.service_token_issue(**data.validated_data, client_ip=client_address(request))
        return Response({"access": access, "expires_in": expires_in})


class AdminLoginApi(APIView):
    """Credentials typed into some service's Django admin; limited exactly like the API login."""

    permission_classes = [IsService]

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "AdminLoginInput"

        email = serializers.CharField(max_length=254)
        password = serializers.CharField(**PASSWORD_FIELD)
        # The address of the person at the admin form, as the calling service saw it.
        client_ip = serializers.IPAddressField(required=False)

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "AdminLoginOutput"

        user_id = serializers.UUIDField()
        email = serializers.EmailField()
        roles = serializers.ListField(child=serializers.CharField())

    @extend_schema(request=InputSerializer, responses={200: OutputSerializer}, tags=["internal"])
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        address = data.validated_data.get("client_ip") or client_address(request)
        user = services.user_authenticate(
            email=data.validated_data["email"], password=data.validated_data["password"], client_ip=address
        )
        return Response({"user_id": str(user.pk), "email": user.email, "roles": user.role_list})


class InternalUserDetailApi(APIView):
    permission_classes = [IsService]

    @extend_schema(responses={200: UserOutputSerializer}, tags=["internal"])
    def get(self, request: Request, user_id: str) -> Response:
        user = selectors.user_get(user_id=user_id)
        if user is None:
            return problem_response(404, "No such user.")
        return Response(selectors.user_document(user))


class VerifyPasswordApi(APIView):
    """Another service confirms a user's password before something drastic (e.g. erasure)."""

    permission_classes = [IsService]

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "VerifyPasswordInput"

        password = serializers.CharField(**PASSWORD_FIELD)

    @extend_schema(request=InputSerializer, responses={204: None}, tags=["internal"])
    def post(self, request: Request, user_id: str) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = selectors.user_get(user_id=user_id)
        if user is None or not user.is_active:
            raise exceptions.PermissionDenied("The password is not correct.")
        services.password_confirm(
            user=user, password=data.validated_data["password"], client_ip=client_address(request)
        )
        return Response(status=status.HTTP_204_NO_CONTENT)
