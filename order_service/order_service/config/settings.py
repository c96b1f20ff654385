"""Settings of the orders service: the shared base from bazaar_common, then its own."""

from bazaar_common.settings import env, env_int, identify

identify("orders", package="order_service")
# After identify: the shared settings follow from the service's name.
from bazaar_common.shared_settings import *  # noqa: E402,F403
from bazaar_common.shared_settings import INSTALLED_APPS as SHARED_APPS  # noqa: E402

INSTALLED_APPS = [*SHARED_APPS, "order_service.orders"]

# How long a customer has to pay a reserved order before it is cancelled and its stock released.
ORDER_PAYMENT_TIMEOUT_SECONDS = env_int("ORDER_PAYMENT_TIMEOUT_SECONDS", 15 * 60)
# A pending order whose reservation the catalog never answered is cancelled after this long.
ORDER_PENDING_TIMEOUT_SECONDS = env_int("ORDER_PENDING_TIMEOUT_SECONDS", 60 * 60)
# The catalog's own hold must outlive our payment window, so a late payment never meets
# stock the catalog already gave back; our expiry releases it first.
CATALOG_RESERVATION_SECONDS = env_int("CATALOG_RESERVATION_SECONDS", 2 * ORDER_PAYMENT_TIMEOUT_SECONDS + 300)
ORDER_EXPIRY_INTERVAL_SECONDS = env_int("ORDER_EXPIRY_INTERVAL_SECONDS", 60)
# Business limits (orders/limits.py): units per line and per order, unpaid units per customer
# per product (anti-scalping).
ORDER_MAX_LINE_QUANTITY = env_int("ORDER_MAX_LINE_QUANTITY", 1000)
ORDER_MAX_UNITS = env_int("ORDER_MAX_UNITS", 5000)
ORDER_MAX_UNPAID_UNITS_PER_PRODUCT = env_int("ORDER_MAX_UNPAID_UNITS_PER_PRODUCT", 1000)
MERCHANT_IDS_CACHE_SECONDS = env_int("MERCHANT_IDS_CACHE_SECONDS", 60)
PAYMENT_PROVIDER_CLASS = env("PAYMENT_PROVIDER_CLASS", "order_service.orders.payments.SimulatedPaymentProvider")
PLATFORM_CURRENCY = env("PLATFORM_CURRENCY", "EUR") or "EUR"
# The periodic reconciliation of orders with the catalog's reservations: how often, how long an
# order must be idle before it counts as disagreeing (the saga may be at work on it), how many per
# round, and how far back cancelled/rejected orders are checked for stock still held.
ORDER_RECONCILE_INTERVAL_SECONDS = env_int("ORDER_RECONCILE_INTERVAL_SECONDS", 300)
ORDER_RECONCILE_MIN_AGE_SECONDS = env_int("ORDER_RECONCILE_MIN_AGE_SECONDS", 300)
ORDER_RECONCILE_BATCH_SIZE = env_int("ORDER_RECONCILE_BATCH_SIZE", 200)
# Batches per round; the next round resumes where this one stopped (reconciliation.orders_reconcile).
ORDER_RECONCILE_MAX_BATCHES = env_int("ORDER_RECONCILE_MAX_BATCHES", 20)
ORDER_RECONCILE_WINDOW_SECONDS = env_int("ORDER_RECONCILE_WINDOW_SECONDS", 24 * 3600)

# Where the platform's Prometheus answers (``make up`` sets it when it runs one): the support
# dashboard links to its alerts and to the order metrics. Empty: no links.
PROMETHEUS_URL = (env("PROMETHEUS_URL", "") or "").rstrip("/")

CELERY_BEAT_SCHEDULE = {
    "orders-expire-unpaid": {
        "task": "orders.expire_unpaid",
        "schedule": float(ORDER_EXPIRY_INTERVAL_SECONDS),
        "options": {"queue": "orders"},
    },
    "orders-reconcile-reservations": {
        "task": "orders.reconcile_reservations",
        "schedule": float(ORDER_RECONCILE_INTERVAL_SECONDS),
        "options": {"queue": "orders", "expires": float(ORDER_RECONCILE_INTERVAL_SECONDS)},
    },
}
