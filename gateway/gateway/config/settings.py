"""Settings of the gateway: the shared base from bazaar_common, then its own (all from env)."""

from bazaar_common.settings import database_config, env_bool, env_float, env_int, env_list, identify

identify("gateway", package="gateway")
# After identify: the shared settings follow from the service's name.
from bazaar_common.shared_settings import *  # noqa: E402,F403
from bazaar_common.shared_settings import INSTALLED_APPS as SHARED_APPS  # noqa: E402
from bazaar_common.shared_settings import REDIS_URL, SPECTACULAR_SETTINGS  # noqa: E402

# The gateway's database serves only its admin: no connection held per proxy thread.
DATABASES = {"default": database_config("gateway", conn_max_age=0)}
# The admin gets the gateway's own site (status page with routes, services and breakers).
INSTALLED_APPS = [
    *("gateway.routing.apps.GatewayAdminConfig" if app == "django.contrib.admin" else app for app in SHARED_APPS),
    "gateway.routing",
    "drf_spectacular_sidecar",
]

# --- edge -------------------------------------------------------------------------------------
GATEWAY_MAX_BODY_BYTES = env_int("GATEWAY_MAX_BODY_BYTES", 1024 * 1024)
GATEWAY_CORS_ALLOWED_ORIGINS = env_list("GATEWAY_CORS_ALLOWED_ORIGINS", [])
GATEWAY_TRUSTED_PROXIES = env_int("GATEWAY_TRUSTED_PROXIES", 0)
GATEWAY_HSTS_SECONDS = env_int("GATEWAY_HSTS_SECONDS", 0)
GATEWAY_ACCESS_LOG = env_bool("GATEWAY_ACCESS_LOG", True)

# --- rate limiting (Redis, shared by all gateway instances) -----------------------------------
GATEWAY_RATE_LIMITING = env_bool("GATEWAY_RATE_LIMITING", True)
GATEWAY_RATE_LIMIT_PREFIX = env_list("GATEWAY_RATE_LIMIT_PREFIX", ["bazaar:ratelimit"])[0]
GATEWAY_RATE_LIMIT_REDIS_URL = env_list("GATEWAY_RATE_LIMIT_REDIS_URL", [REDIS_URL])[0]

# --- load shedding: sign-in class requests in flight per gateway process -------------------------
# Each is an Argon2 hash (~25 ms of a core) in the auth service; beyond this many, wait at most
# GATEWAY_LOGIN_QUEUE_SECONDS, then answer 503 + Retry-After.
GATEWAY_LOGIN_CONCURRENCY = env_int("GATEWAY_LOGIN_CONCURRENCY", 4)
GATEWAY_LOGIN_QUEUE_SECONDS = env_float("GATEWAY_LOGIN_QUEUE_SECONDS", 0.5)
# Upstream failures (5xx, timeouts) one caller may cause per service per window before the gateway
# answers that caller 429 itself: one client never trips a breaker for everyone.
GATEWAY_CALLER_MAX_FAILURES = env_int("GATEWAY_CALLER_MAX_FAILURES", 3)
GATEWAY_CALLER_FAILURE_WINDOW_SECONDS = env_float("GATEWAY_CALLER_FAILURE_WINDOW_SECONDS", 10.0)

# --- upstream calls -----------------------------------------------------------------------------
GATEWAY_BALANCER = env_list("GATEWAY_BALANCER", ["least_outstanding"])[0]
GATEWAY_UPSTREAM_POOL_SIZE = env_int("GATEWAY_UPSTREAM_POOL_SIZE", 32)
GATEWAY_RETRY_BUDGET_RATIO = env_float("GATEWAY_RETRY_BUDGET_RATIO", 0.2)
GATEWAY_BREAKER_INSTANCE_FAILURES = env_int("GATEWAY_BREAKER_INSTANCE_FAILURES", 5)
GATEWAY_BREAKER_SERVICE_FAILURES = env_int("GATEWAY_BREAKER_SERVICE_FAILURES", 10)
GATEWAY_BREAKER_RECOVERY_SECONDS = env_float("GATEWAY_BREAKER_RECOVERY_SECONDS", 5.0)
GATEWAY_BREAKER_HALF_OPEN_PROBES = env_int("GATEWAY_BREAKER_HALF_OPEN_PROBES", 1)
GATEWAY_HEALTH_CHECKS = env_bool("GATEWAY_HEALTH_CHECKS", True)
GATEWAY_OPENAPI_CACHE_SECONDS = env_float("GATEWAY_OPENAPI_CACHE_SECONDS", 30.0)
# The public base URLs the merged OpenAPI document names as its ``servers`` (comma separated);
# none: "/", the gateway that served the document.
GATEWAY_PUBLIC_URLS = env_list("GATEWAY_PUBLIC_URLS", [])

SPECTACULAR_SETTINGS = {
    **SPECTACULAR_SETTINGS,
    "TITLE": "Bazaar API",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- readiness (bazaar_common.health) --------------------------------------------------------------
# The proxy path needs neither the gateway's own database (its admin's users and sessions) nor
# Redis (rate limiting fails open): both only degrade, so an outage of either keeps every gateway
# pod in its Service.
READINESS_REQUIRED = tuple(env_list("READINESS_REQUIRED", []))
