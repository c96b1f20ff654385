"""Settings of the profiles service: the shared base from bazaar_common, then its own."""

from bazaar_common.settings import build_settings

globals().update(
    build_settings(
        service="profiles",
        package="profile_service",
        apps=["profile_service.profiles"],
    )
)
