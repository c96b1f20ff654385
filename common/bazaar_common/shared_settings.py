"""The settings every Bazaar service shares, as module-level names read from the environment.

A service's ``config/settings.py`` names itself (:func:`bazaar_common.settings.identify`) and
star-imports this module, so each setting is a plain assignment Django, mypy's django plugin
(``strict_settings``) and a reader all see; the names that depend on the service follow from it.
Production differs from development only through environment variables; with ``DEBUG`` off a
service refuses to start without the secrets it needs, naming the variable.
"""

from __future__ import annotations

from bazaar_common import settings as _env

_service = _env.identity()
BAZAAR_SERVICE = _service.name
ROOT_URLCONF = f"{_service.package}.config.urls"
WSGI_APPLICATION = f"{_service.package}.config.wsgi.application"

DEBUG = _env.env_bool("DEBUG", False)
SECRET_KEY = _env.checked_secret_key(debug=DEBUG)
# Previous keys still accepted while SECRET_KEY is rotated (sessions, password-reset and signed
# values made with them stay valid); comma separated, from the Secret.
SECRET_KEY_FALLBACKS = _env.env_list("SECRET_KEY_FALLBACKS", [])
ALLOWED_HOSTS = _env.env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"])

# A service adds its own apps after these (``[*SHARED_APPS, ...]``).
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "django_prometheus",
    "bazaar_common.outbox",
]
MIDDLEWARE = [
    "bazaar_common.request_id.RequestIdMiddleware",
    # Outside the rest, so that what they raise (a bad Host, a body over the limit) and every HTML
    # error page ends as a problem+json body.
    "bazaar_common.errors.JsonErrorMiddleware",
    "bazaar_common.headers.PrivateNoStoreMiddleware",
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    # Static files, sessions, CSRF, the admin user and messages, for admin paths only: API requests
    # skip them (see bazaar_common.middleware, ADMIN_MIDDLEWARE below).
    "bazaar_common.middleware.AdminStackMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]
# What only the admin needs; run for admin paths only (bazaar_common.middleware.AdminStackMiddleware).
ADMIN_MIDDLEWARE = [
    # Serves the admin's static files from the app server itself (no nginx needed).
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
# The admin's checks look for its middleware in MIDDLEWARE; it runs inside AdminStackMiddleware
# for every admin request (tests/common/test_middleware.py).
SILENCED_SYSTEM_CHECKS = ["admin.E408", "admin.E409", "admin.E410"]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
DATABASES = {"default": _env.database_config(_service.name)}

REDIS_URL = _env.redis_url()
CACHES = {
    "default": {
        "BACKEND": "bazaar_common.cache.BazaarRedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": f"bazaar:{_service.name}",
        "TIMEOUT": 300,
    }
}
# Where auth writes each user's "not before" time and every service reads it.
REVOCATION_REDIS_URL = _env.env("REVOCATION_REDIS_URL", REDIS_URL) or REDIS_URL
# What /readyz fails on (bazaar_common.health): what this service's traffic cannot do without.
# Everything else checked only degrades.
READINESS_REQUIRED = tuple(_env.env_list("READINESS_REQUIRED", ["database"]))
# Staff sign in to every admin with their Bazaar account (verified by the auth service).
AUTHENTICATION_BACKENDS = ["bazaar_common.auth.admin_backend.BazaarAdminBackend"]
# Peers whose X-Forwarded-For is believed (the gateway); everyone else is REMOTE_ADDR.
TRUSTED_PROXIES = _env.env_list("TRUSTED_PROXIES", ["127.0.0.1", "::1"] if DEBUG else [])
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = f"/static/{_service.name}/"
STATIC_ROOT = str(_env.repo_var_dir() / "static" / _service.name)
# In development files come straight from the apps; production images run collectstatic.
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["bazaar_common.auth.authentication.JWTAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["bazaar_common.parsers.BoundedJSONParser"],
    "DEFAULT_SCHEMA_CLASS": "bazaar_common.openapi.BazaarAutoSchema",
    "DEFAULT_PAGINATION_CLASS": "bazaar_common.pagination.BazaarPagination",
    "PAGE_SIZE": 20,
    "EXCEPTION_HANDLER": "bazaar_common.errors.problem_exception_handler",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": f"Bazaar {_service.name} API",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
}
LOGGING = _env.logging_config(_service.name)

# Celery (``CELERY_`` namespace): the broker, and tasks run in-process when eager (tests); the
# broker-dependent options are applied by ``make_celery_app`` (settings.celery_broker_settings).
CELERY_BROKER_URL = _env.celery_broker_url()
CELERY_TASK_ALWAYS_EAGER = _env.env_bool("CELERY_TASK_ALWAYS_EAGER", False)
# A consumer's retries back off to this at most (bazaar_common.outbox.consumers).
CELERY_RETRY_BACKOFF_MAX_SECONDS = _env.celery_retry_backoff_max()

# Each admin its own cookies: on one host (development, one port each) they would overwrite each other.
SESSION_COOKIE_NAME = f"bazaar_{_service.name}_session"
CSRF_COOKIE_NAME = f"bazaar_{_service.name}_csrftoken"
SECURE_CONTENT_TYPE_NOSNIFF = True
# Behind an ingress that terminates TLS: trust its X-Forwarded-Proto, and list the public origins
# of the admins so their forms pass the CSRF origin check.
CSRF_TRUSTED_ORIGINS = _env.env_list("CSRF_TRUSTED_ORIGINS", [])
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if _env.env_bool("BEHIND_TLS_PROXY") else None
X_FRAME_OPTIONS = "DENY"
DATA_UPLOAD_MAX_MEMORY_SIZE = _env.env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 2 * 1024 * 1024)
API_JSON_MAX_DEPTH = _env.env_int("API_JSON_MAX_DEPTH", 32)
# Error reports never carry a credential, and development mode shows no debug page.
DEFAULT_EXCEPTION_REPORTER_FILTER = "bazaar_common.errors.MaskingExceptionReporterFilter"
DEFAULT_EXCEPTION_REPORTER = "bazaar_common.errors.ProblemExceptionReporter"

DISCOVERY_TTL_SECONDS = _env.env_float("DISCOVERY_TTL_SECONDS", 6.0)
DISCOVERY_HEARTBEAT_SECONDS = _env.env_float("DISCOVERY_HEARTBEAT_SECONDS", 2.0)
# Delivery of messages to their consumer (see bazaar_common.outbox.services): the first wait for an
# acknowledgement, doubled after every re-send up to the cap, and how many sends before the flow
# is settled safely and flagged for support.
OUTBOX_ACK_TIMEOUT_SECONDS = _env.env_float("OUTBOX_ACK_TIMEOUT_SECONDS", 30.0)
OUTBOX_ACK_BACKOFF_MAX_SECONDS = _env.env_float("OUTBOX_ACK_BACKOFF_MAX_SECONDS", 600.0)
OUTBOX_MAX_ATTEMPTS = _env.env_int("OUTBOX_MAX_ATTEMPTS", 10)
