from django.urls import path

from auth_service.accounts import apis, internal_apis

app_name = "accounts"

public_urlpatterns = [
    path("register", apis.RegisterApi.as_view(), name="register"),
    path("token", apis.TokenObtainApi.as_view(), name="token"),
    path("token/refresh", apis.TokenRefreshApi.as_view(), name="token-refresh"),
    path("logout", apis.LogoutApi.as_view(), name="logout"),
    path("me", apis.MeApi.as_view(), name="me"),
    path("me/deactivate", apis.MeDeactivateApi.as_view(), name="me-deactivate"),
    path("password/change", apis.PasswordChangeApi.as_view(), name="password-change"),
    path("password/reset", apis.PasswordResetApi.as_view(), name="password-reset"),
    path("password/reset/confirm", apis.PasswordResetConfirmApi.as_view(), name="password-reset-confirm"),
    path(".well-known/jwks.json", apis.JwksApi.as_view(), name="jwks"),
    path("users/<str:user_id>", apis.UserDetailApi.as_view(), name="user-detail"),
    path("users/<str:user_id>/deactivate", apis.UserDeactivateApi.as_view(), name="user-deactivate"),
    path("users/<str:user_id>/sign-out", apis.UserSignOutEverywhereApi.as_view(), name="user-sign-out"),
    path("users/<str:user_id>/roles", apis.UserRoleGrantApi.as_view(), name="user-roles"),
    path("users/<str:user_id>/roles/<str:role>", apis.UserRoleRemoveApi.as_view(), name="user-role"),
]

internal_urlpatterns = [
    path("service-token", internal_apis.ServiceTokenApi.as_view(), name="service-token"),
    path("admin-login", internal_apis.AdminLoginApi.as_view(), name="admin-login"),
    path("users/<str:user_id>", internal_apis.InternalUserDetailApi.as_view(), name="internal-user"),
    path(
        "users/<str:user_id>/verify-password",
        internal_apis.VerifyPasswordApi.as_view(),
        name="internal-verify-password",
    ),
]
