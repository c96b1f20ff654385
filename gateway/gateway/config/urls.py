from bazaar_common.urls import handler404, handler500, platform_urlpatterns

urlpatterns = [
    *platform_urlpatterns(),
]

__all__ = ["handler404", "handler500", "urlpatterns"]
