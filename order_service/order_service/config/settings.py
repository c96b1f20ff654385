"""Settings of the orders service: the shared base from bazaar_common, then its own."""

from bazaar_common.settings import build_settings

globals().update(
    build_settings(
        service="orders",
        package="order_service",
        apps=["order_service.orders"],
    )
)
