"""Settings of the profiles service: the shared base from bazaar_common, then its own."""

from bazaar_common.settings import identify

identify("profiles", package="profile_service")
# After identify: the shared settings follow from the service's name.
from bazaar_common.shared_settings import *  # noqa: E402,F403
from bazaar_common.shared_settings import INSTALLED_APPS as SHARED_APPS  # noqa: E402

INSTALLED_APPS = [*SHARED_APPS, "profile_service.profiles"]
