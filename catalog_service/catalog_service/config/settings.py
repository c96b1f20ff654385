"""Settings of the catalog service: the shared base from bazaar_common, then its own."""

from decimal import Decimal

from bazaar_common.settings import env, env_float, env_int, identify

identify("catalog", package="catalog_service")
# After identify: the shared settings follow from the service's name.
from bazaar_common.shared_settings import *  # noqa: E402,F403
from bazaar_common.shared_settings import AUTHENTICATION_BACKENDS as SHARED_BACKENDS  # noqa: E402
from bazaar_common.shared_settings import INSTALLED_APPS as SHARED_APPS  # noqa: E402

INSTALLED_APPS = [*SHARED_APPS, "guardian", "catalog_service.products", "catalog_service.inventory"]

# django-guardian answers object permissions (a merchant's users on that merchant's products); the
# common backends stay first so the Bazaar admin sign-in keeps working.
AUTHENTICATION_BACKENDS = [*SHARED_BACKENDS, "guardian.backends.ObjectPermissionBackend"]
# No anonymous guardian user: anonymous visitors never hold object permissions here.
ANONYMOUS_USER_NAME = None

# --- Catalog -------------------------------------------------------------------------------------
# The platform currency: prices without an explicit currency are in it.
CATALOG_DEFAULT_CURRENCY = (env("CATALOG_DEFAULT_CURRENCY", "EUR") or "EUR").upper()
CATALOG_CURRENCIES = [c.strip().upper() for c in (env("CATALOG_CURRENCIES", "") or "").split(",") if c.strip()]
if CATALOG_DEFAULT_CURRENCY not in CATALOG_CURRENCIES:
    CATALOG_CURRENCIES.insert(0, CATALOG_DEFAULT_CURRENCY)
CATALOG_MAX_PRICE = Decimal("99999999.99")
# Products with at most this many units available count as "low stock" in the admin.
CATALOG_LOW_STOCK_THRESHOLD = env_int("CATALOG_LOW_STOCK_THRESHOLD", 5)
# How long cached list/detail responses live (invalidation makes them fresh earlier).
CATALOG_CACHE_SECONDS = env_int("CATALOG_CACHE_SECONDS", 300)
# The PostgreSQL text-search configuration used for ``q``.
CATALOG_SEARCH_CONFIG = env("CATALOG_SEARCH_CONFIG", "english")

# --- Inventory -----------------------------------------------------------------------------------
# Upper bound for a reservation's life when the order service asks for longer.
INVENTORY_MAX_RESERVATION_SECONDS = env_int("INVENTORY_MAX_RESERVATION_SECONDS", 24 * 3600)
INVENTORY_EXPIRY_SWEEP_SECONDS = env_float("INVENTORY_EXPIRY_SWEEP_SECONDS", 30.0)
INVENTORY_EXPIRY_BATCH_SIZE = env_int("INVENTORY_EXPIRY_BATCH_SIZE", 200)
# An overdue hold still held this long after the order service was asked about it is asked again.
INVENTORY_EXPIRY_REASK_SECONDS = env_int("INVENTORY_EXPIRY_REASK_SECONDS", 300)

CELERY_BEAT_SCHEDULE = {
    "catalog-expire-reservations": {
        "task": "catalog.expire_reservations",
        "schedule": INVENTORY_EXPIRY_SWEEP_SECONDS,
        "options": {"queue": "catalog", "expires": INVENTORY_EXPIRY_SWEEP_SECONDS},
    }
}
