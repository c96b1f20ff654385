"""Settings of the auth service: the shared base from bazaar_common, then its own."""

from bazaar_common.settings import build_settings

globals().update(
    build_settings(
        service="auth",
        package="auth_service",
        apps=["auth_service.accounts"],
    )
)
