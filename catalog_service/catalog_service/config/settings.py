"""Settings of the catalog service: the shared base from bazaar_common, then its own."""

from bazaar_common.settings import build_settings

globals().update(
    build_settings(
        service="catalog",
        package="catalog_service",
        apps=["catalog_service.products"],
    )
)
