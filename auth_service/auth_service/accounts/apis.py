"""Public API under ``/api/v1/auth/``: one view per operation."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from auth_service.accounts import selectors, services
from auth_service.accounts.keys import key_ring
from auth_service.accounts.models import ROLE_CHOICES
from bazaar_common.auth.client_address import client_address
from bazaar_common.auth.permissions import IsAdmin, IsStaff
from bazaar_common.domain import NotFound
from bazaar_common.drf import principal

PASSWORD_FIELD: dict[str, Any] = {"write_only": True, "trim_whitespace": False, "max_length": 512}


class CredentialApi(APIView):
    """An endpoint that takes credentials in the body, not a bearer token.

    A stray or stale ``Authorization`` header is ignored. Failures are still 401 with a
    ``WWW-Authenticate`` challenge (DRF would turn them into 403 without one).
    """

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]

    def get_authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="bazaar"'


class UserOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    email = serializers.EmailField()
    roles = serializers.ListField(child=serializers.CharField())
    is_active = serializers.BooleanField()
    date_joined = serializers.DateTimeField()
    last_login = serializers.DateTimeField(allow_null=True)


class TokenPairOutputSerializer(serializers.Serializer):
    access = serializers.CharField()
    refresh = serializers.CharField()


def _pair_response(pair: services.TokenPair, status_code: int = status.HTTP_200_OK) -> Response:
    return Response({"access": pair.access, "refresh": pair.refresh}, status=status_code)


def _user_response(user: Any, status_code: int = status.HTTP_200_OK) -> Response:
    return Response(selectors.user_document(user), status=status_code)


class RegisterApi(CredentialApi):
    permission_classes = [AllowAny]

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "RegisterInput"

        email = serializers.EmailField(max_length=254)
        password = serializers.CharField(**PASSWORD_FIELD)

    @extend_schema(request=InputSerializer, responses={201: UserOutputSerializer}, tags=["auth"])
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = services.user_register(**data.validated_data, client_ip=client_address(request))
        return _user_response(user, status.HTTP_201_CREATED)


class TokenObtainApi(CredentialApi):
    """Sign in. Wrong email, wrong password and deactivated account all get the same 401."""

    permission_classes = [AllowAny]

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "TokenObtainInput"

        email = serializers.CharField(max_length=254)
        password = serializers.CharField(**PASSWORD_FIELD)

    @extend_schema(request=InputSerializer, responses={200: TokenPairOutputSerializer}, tags=["auth"])
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = services.user_authenticate(**data.validated_data, client_ip=client_address(request))
        return _pair_response(services.token_pair_issue(user=user))


class RefreshInputSerializer(serializers.Serializer):
    refresh = serializers.CharField(max_length=8192)


class TokenRefreshApi(CredentialApi):
    """Rotate a refresh token; presenting a spent one revokes every session of its user."""

    permission_classes = [AllowAny]

    @extend_schema(request=RefreshInputSerializer, responses={200: TokenPairOutputSerializer}, tags=["auth"])
    def post(self, request: Request) -> Response:
        data = RefreshInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return _pair_response(services.token_refresh(refresh=data.validated_data["refresh"]))


class LogoutApi(CredentialApi):
    permission_classes = [AllowAny]

    @extend_schema(request=RefreshInputSerializer, responses={204: None}, tags=["auth"])
    def post(self, request: Request) -> Response:
        data = RefreshInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.token_revoke(refresh=data.validated_data["refresh"])
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(responses={200: UserOutputSerializer}, tags=["auth"])
    def get(self, request: Request) -> Response:
        return _user_response(selectors.user_for_principal(principal=principal(request)))


class MeDeactivateApi(APIView):
    """Close one's own account (the password confirms it is really the owner)."""

    permission_classes = [IsAuthenticated]

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "MeDeactivateInput"

        password = serializers.CharField(**PASSWORD_FIELD)

    @extend_schema(request=InputSerializer, responses={204: None}, tags=["auth"])
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = selectors.user_for_principal(principal=principal(request))
        services.user_self_deactivate(
            user=user, password=data.validated_data["password"], client_ip=client_address(request)
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class PasswordChangeApi(APIView):
    """Every other session ends; the answer carries a fresh pair for this one."""

    permission_classes = [IsAuthenticated]

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "PasswordChangeInput"

        current_password = serializers.CharField(**PASSWORD_FIELD)
        new_password = serializers.CharField(**PASSWORD_FIELD)

    @extend_schema(request=InputSerializer, responses={200: TokenPairOutputSerializer}, tags=["auth"])
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = selectors.user_for_principal(principal=principal(request))
        pair = services.user_password_change(user=user, **data.validated_data, client_ip=client_address(request))
        return _pair_response(pair)


RESET_ACCEPTED = {"detail": "If an account exists for this email, a reset link is on its way."}


class PasswordResetApi(CredentialApi):
    permission_classes = [AllowAny]

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "PasswordResetInput"

        email = serializers.CharField(max_length=254)

    @extend_schema(
        request=InputSerializer,
        responses={202: inline_serializer("ResetAccepted", {"detail": serializers.CharField()})},
        tags=["auth"],
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.password_reset_request(email=data.validated_data["email"], client_ip=client_address(request))
        return Response(RESET_ACCEPTED, status=status.HTTP_202_ACCEPTED)


class PasswordResetConfirmApi(CredentialApi):
    permission_classes = [AllowAny]

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "PasswordResetConfirmInput"

        uid = serializers.CharField(max_length=64)
        token = serializers.CharField(max_length=128)
        new_password = serializers.CharField(**PASSWORD_FIELD)

    @extend_schema(request=InputSerializer, responses={204: None}, tags=["auth"])
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.password_reset_confirm(**data.validated_data, client_ip=client_address(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class JwkOutputSerializer(serializers.Serializer):
    kty = serializers.CharField(help_text="RSA")
    kid = serializers.CharField(help_text="The key id a token names in its header.")
    alg = serializers.CharField(help_text="RS256")
    use = serializers.CharField(help_text="sig")
    key_ops = serializers.ListField(child=serializers.CharField())
    n = serializers.CharField(help_text="The modulus, base64url.")
    e = serializers.CharField(help_text="The exponent, base64url.")


class JwksOutputSerializer(serializers.Serializer):
    keys = JwkOutputSerializer(many=True)


class JwksApi(APIView):
    """The public keys verifiers trust: the signing key, the previous one, any staged one."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]

    @extend_schema(operation_id="auth_jwks", responses={200: JwksOutputSerializer}, tags=["auth"])
    def get(self, request: Request) -> Response:
        response = Response(key_ring().jwks())
        # Short enough that a rotation is seen quickly; verifiers re-fetch early on an unknown kid.
        response["Cache-Control"] = "public, max-age=60"
        return response


# --- Administration of users (admins; support may look) -------------------------------------------


class UserDetailApi(APIView):
    permission_classes = [IsStaff]

    @extend_schema(responses={200: UserOutputSerializer}, tags=["auth-admin"])
    def get(self, request: Request, user_id: str) -> Response:
        user = selectors.user_get(user_id=user_id)
        if user is None:
            raise NotFound("No such user.")
        return _user_response(user)


class UserDeactivateApi(APIView):
    permission_classes = [IsAdmin]

    @extend_schema(request=None, responses={200: UserOutputSerializer}, tags=["auth-admin"])
    def post(self, request: Request, user_id: str) -> Response:
        user = selectors.user_get(user_id=user_id)
        if user is None:
            raise NotFound("No such user.")
        return _user_response(services.user_deactivate(user=user))


class UserSignOutEverywhereApi(APIView):
    """Admins: end every session of a user at once (refresh tokens and access tokens alike)."""

    permission_classes = [IsAdmin]

    @extend_schema(request=None, responses={204: None}, tags=["auth-admin"])
    def post(self, request: Request, user_id: str) -> Response:
        if selectors.user_get(user_id=user_id) is None:
            raise NotFound("No such user.")
        services.user_sign_out_everywhere(user_id=user_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class RolesOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    roles = serializers.ListField(child=serializers.CharField())


def _roles_response(user: Any) -> Response:
    return Response({"id": str(user.pk), "roles": user.role_list})


class UserRoleGrantApi(APIView):
    """Only admins grant roles (a customer granting itself one gets 403)."""

    permission_classes = [IsAdmin]

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "UserRoleGrantInput"

        role = serializers.ChoiceField(choices=ROLE_CHOICES)

    @extend_schema(request=InputSerializer, responses={200: RolesOutputSerializer}, tags=["auth-admin"])
    def post(self, request: Request, user_id: str) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        if selectors.user_get(user_id=user_id) is None:
            raise NotFound("No such user.")
        return _roles_response(services.user_role_grant(user_id=user_id, role=data.validated_data["role"]))

    @extend_schema(responses={200: RolesOutputSerializer}, tags=["auth-admin"])
    def get(self, request: Request, user_id: str) -> Response:
        user = selectors.user_get(user_id=user_id)
        if user is None:
            raise NotFound("No such user.")
        return _roles_response(user)


class UserRoleRemoveApi(APIView):
    permission_classes = [IsAdmin]

    @extend_schema(
        request=None,
        responses={
            200: RolesOutputSerializer,
            409: OpenApiResponse(description="An admin cannot remove their own admin role."),
        },
        tags=["auth-admin"],
    )
    def delete(self, request: Request, user_id: str, role: str) -> Response:
        if role not in dict(ROLE_CHOICES):
            raise serializers.ValidationError({"role": [f'"{role}" is not a valid choice.']})
        if selectors.user_get(user_id=user_id) is None:
            raise NotFound("No such user.")
        user = services.user_role_remove(user_id=user_id, role=role, actor_id=principal(request).id)
        return _roles_response(user)
