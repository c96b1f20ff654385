"""The profile API: the caller's own profile and addresses, staff reads, privacy, internal reads."""

from __future__ import annotations

import uuid
from typing import Any

from django.core.validators import RegexValidator
from django.http import Http404
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from bazaar_common.auth.permissions import IsService
from bazaar_common.contracts import http as internal
from bazaar_common.drf import caller_id, principal
from bazaar_common.pagination import BazaarPagination
from profile_service.profiles import selectors, services
from profile_service.profiles.models import Profile
from profile_service.profiles.permissions import IsUser, can_read_profile
from profile_service.profiles.validation import (
    BirthDateField,
    CountryField,
    NotificationChannelsField,
    PhoneNumberField,
    StrictSerializer,
    currency_field,
    language_field,
)

EXPORT_FORMAT = "bazaar-privacy-export/1"


# --- Representations shared by several endpoints -------------------------------------------------
class PreferencesOutputSerializer(serializers.Serializer):
    language = serializers.CharField()
    currency = serializers.CharField()
    marketing_consent = serializers.BooleanField()
    marketing_consent_changed_at = serializers.DateTimeField(allow_null=True)
    notification_channels = serializers.ListField(child=serializers.CharField())


class ProfileOutputSerializer(serializers.Serializer):
    user_id = serializers.UUIDField()
    display_name = serializers.CharField()
    phone = serializers.CharField()
    date_of_birth = serializers.DateField(allow_null=True)
    preferences = PreferencesOutputSerializer(source="*")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class AddressOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    label = serializers.CharField()  # type: ignore[assignment]  # a field named like Field.label
    full_name = serializers.CharField()
    line1 = serializers.CharField()
    line2 = serializers.CharField()
    city = serializers.CharField()
    postal_code = serializers.CharField()
    region = serializers.CharField()
    country = serializers.CharField()
    phone = serializers.CharField()
    is_default_shipping = serializers.BooleanField()
    is_default_billing = serializers.BooleanField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class ProfileWithAddressesOutputSerializer(ProfileOutputSerializer):
    addresses = AddressOutputSerializer(many=True, source="addresses.all")  # ordered by id


# --- The caller's own profile -------------------------------------------------------------------
class PreferencesInputSerializer(StrictSerializer):
    read_only_names = frozenset({"marketing_consent_changed_at"})

    language = language_field(required=False)
    currency = currency_field(required=False)
    marketing_consent = serializers.BooleanField(required=False)
    notification_channels = NotificationChannelsField(required=False)


class ProfileMeApi(APIView):
    permission_classes = [IsUser]

    class PatchInputSerializer(StrictSerializer):
        read_only_names = frozenset({"user_id", "created_at", "updated_at"})

        display_name = serializers.CharField(max_length=100, allow_blank=True, required=False)
        phone = PhoneNumberField(required=False)
        date_of_birth = BirthDateField(required=False)
        preferences = PreferencesInputSerializer(required=False)

    class ErasureInputSerializer(StrictSerializer):
        password = serializers.CharField(max_length=4096, trim_whitespace=False)

    @extend_schema(responses={200: ProfileOutputSerializer, 410: OpenApiResponse(description="Erased.")})
    def get(self, request: Request) -> Response:
        profile = services.profile_ensure(user_id=uuid.UUID(caller_id(request.user)))
        return Response(ProfileOutputSerializer(profile).data)

    @extend_schema(request=PatchInputSerializer, responses={200: ProfileOutputSerializer})
    def patch(self, request: Request) -> Response:
        serializer = self.PatchInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        changes = {**{k: v for k, v in data.items() if k != "preferences"}, **data.get("preferences", {})}
        profile = services.profile_ensure(user_id=uuid.UUID(caller_id(request.user)))
        profile = services.profile_update(profile=profile, changes=changes)
        return Response(ProfileOutputSerializer(profile).data)

    @extend_schema(
        request=ErasureInputSerializer,
        responses={
            204: OpenApiResponse(description="Erased (also when it already was)."),
            403: OpenApiResponse(description="Wrong password."),
            503: OpenApiResponse(description="The auth service is unavailable; retry later."),
        },
    )
    def delete(self, request: Request) -> Response:
        serializer = self.ErasureInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.profile_erase(
            user_id=uuid.UUID(caller_id(request.user)), password=serializer.validated_data["password"]
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class ProfileExportApi(APIView):
    """One JSON document with what the platform holds about the caller, or 503: never partial."""

    permission_classes = [IsUser]

    @extend_schema_serializer(component_name="PrivacyExport")
    class OutputSerializer(serializers.Serializer):
        format = serializers.CharField()
        generated_at = serializers.DateTimeField()
        user_id = serializers.UUIDField()
        account = serializers.DictField()
        profile = ProfileOutputSerializer()
        addresses = AddressOutputSerializer(many=True)
        orders = serializers.ListField(child=serializers.DictField())

    @extend_schema(
        responses={
            200: OutputSerializer,
            503: OpenApiResponse(description="A service holding part of the data is unavailable."),
        }
    )
    def get(self, request: Request) -> Response:
        profile = services.profile_ensure(user_id=uuid.UUID(caller_id(request.user)))
        export = selectors.privacy_export_gather(profile=profile)
        document = self.OutputSerializer(
            {
                "format": EXPORT_FORMAT,
                "generated_at": timezone.now(),
                "user_id": profile.user_id,
                "account": export.account.to_json(),
                "profile": export.profile,
                "addresses": export.addresses,
                "orders": [order.to_json() for order in export.orders],
            }
        ).data
        response = Response(document)
        response["Content-Disposition"] = f'attachment; filename="bazaar-export-{profile.user_id}.json"'
        response["Cache-Control"] = "no-store"
        return response


# --- Staff (and owner) read by user id ---------------------------------------------------------
class ProfileDetailApi(APIView):
    """Support and admins read any profile; a customer reading someone else's gets 404."""

    permission_classes = [IsUser]

    @extend_schema(responses={200: ProfileWithAddressesOutputSerializer, 404: OpenApiResponse()})
    def get(self, request: Request, user_id: uuid.UUID) -> Response:
        if not can_read_profile(principal(request), user_id):
            raise Http404("No such profile.")
        profile: Profile | None
        if principal(request).id == str(user_id):
            profile = services.profile_ensure(user_id=user_id)
        else:
            profile = selectors.profile_get(user_id=user_id)
        if profile is None:
            raise Http404("No such profile.")
        return Response(ProfileWithAddressesOutputSerializer(profile).data)


# --- The caller's addresses ----------------------------------------------------------------------
postal_code_validator = RegexValidator(r"^[A-Za-z0-9][A-Za-z0-9 -]*$", "Use letters, digits, spaces and hyphens only.")


class AddressInputSerializer(StrictSerializer):
    read_only_names = frozenset({"id", "created_at", "updated_at"})

    label = serializers.CharField(max_length=50, allow_blank=True, required=False)  # type: ignore[assignment]
    full_name = serializers.CharField(max_length=150)
    line1 = serializers.CharField(max_length=200)
    line2 = serializers.CharField(max_length=200, allow_blank=True, required=False)
    city = serializers.CharField(max_length=100)
    postal_code = serializers.CharField(
        max_length=20, allow_blank=True, required=False, validators=[postal_code_validator]
    )
    region = serializers.CharField(max_length=100, allow_blank=True, required=False)
    country = CountryField()
    phone = PhoneNumberField(required=False)
    is_default_shipping = serializers.BooleanField(required=False)
    is_default_billing = serializers.BooleanField(required=False)


class AddressListApi(APIView):
    permission_classes = [IsUser]
    pagination_class = BazaarPagination  # also what documents the list as the paginated envelope

    @extend_schema(responses={200: AddressOutputSerializer(many=True)})
    def get(self, request: Request) -> Response:
        profile = services.profile_ensure(user_id=uuid.UUID(caller_id(request.user)))
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(selectors.address_list(profile=profile), request, view=self)
        return paginator.get_paginated_response(AddressOutputSerializer(page, many=True).data)

    @extend_schema(request=AddressInputSerializer, responses={201: AddressOutputSerializer})
    def post(self, request: Request) -> Response:
        serializer = AddressInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        profile = services.profile_ensure(user_id=uuid.UUID(caller_id(request.user)))
        address = services.address_create(profile=profile, data=serializer.validated_data)
        return Response(AddressOutputSerializer(address).data, status=status.HTTP_201_CREATED)


class AddressDetailApi(APIView):
    permission_classes = [IsUser]

    def _address(self, request: Request, address_id: int) -> Any:
        profile = services.profile_ensure(user_id=uuid.UUID(caller_id(request.user)))
        return selectors.address_get(profile=profile, address_id=address_id)

    @extend_schema(responses={200: AddressOutputSerializer})
    def get(self, request: Request, address_id: int) -> Response:
        return Response(AddressOutputSerializer(self._address(request, address_id)).data)

    @extend_schema(request=AddressInputSerializer, responses={200: AddressOutputSerializer})
    def patch(self, request: Request, address_id: int) -> Response:
        serializer = AddressInputSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        address = services.address_update(address=self._address(request, address_id), changes=serializer.validated_data)
        return Response(AddressOutputSerializer(address).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, address_id: int) -> Response:
        services.address_delete(address=self._address(request, address_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- Internal (service tokens only) --------------------------------------------------------------
class DefaultShippingAddressInternalApi(APIView):
    """For checkout in the order service: the address to copy into an order."""

    permission_classes = [IsService]

    # Internal endpoints stay out of the public schema the gateway assembles.
    @extend_schema(exclude=True)
    def get(self, request: Request, user_id: uuid.UUID) -> Response:
        address = selectors.address_default_shipping_get(user_id=user_id)
        if address is None:
            raise Http404("This user has no default shipping address.")
        fields = {name: getattr(address, name) for name in internal.DefaultShippingAddress.model_fields}
        return Response(internal.DefaultShippingAddress(**fields).to_json())
