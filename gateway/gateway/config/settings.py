"""Settings of the gateway: the shared base from bazaar_common, then its own."""

from bazaar_common.settings import build_settings

globals().update(
    build_settings(
        service="gateway",
        package="gateway",
        apps=["gateway.routing"],
    )
)
