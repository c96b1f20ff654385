from django.urls import path

from profile_service.profiles import apis

api_urlpatterns = [
    path("me", apis.ProfileMeApi.as_view(), name="profile-me"),
    path("me/export", apis.ProfileExportApi.as_view(), name="profile-export"),
    path("me/addresses", apis.AddressListApi.as_view(), name="address-list"),
    path("me/addresses/<int:address_id>", apis.AddressDetailApi.as_view(), name="address-detail"),
    path("<uuid:user_id>", apis.ProfileDetailApi.as_view(), name="profile-detail"),
]

internal_urlpatterns = [
    path(
        "<uuid:user_id>/default-shipping-address",
        apis.DefaultShippingAddressInternalApi.as_view(),
        name="internal-default-shipping-address",
    ),
]
