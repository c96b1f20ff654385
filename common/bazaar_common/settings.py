"""Environment-driven settings shared by every Bazaar Django project (12-factor).

A service's ``config/settings.py`` calls :func:`build_settings` and then adds what is its own::

    globals().update(build_settings(service="catalog", package="catalog_service",
                                    apps=["catalog_service.products"]))

Production differs from development only through environment variables. With ``DEBUG`` off a
service refuses to start without the secrets it needs, naming the variable.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

# The development secret is public on purpose: it only ever signs development sessions.
DEV_SECRET_KEY = "bazaar-insecure-development-key-do-not-use-in-production"
TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off", ""}
# What only the admin needs; run for admin paths only (bazaar_common.middleware.AdminStackMiddleware).
ADMIN_MIDDLEWARE = [
    # Serves the admin's static files from the app server itself (no nginx needed).
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]


def env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    word = raw.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), got {raw!r}")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from exc


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be a number, got {raw!r}") from exc


def env_list(name: str, default: list[str] | None = None) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return list(default or [])
    return [item.strip() for item in raw.split(",") if item.strip()]


def require_env(name: str, *, debug: bool, dev_default: str | None = None) -> str:
    """Return a required variable; in development fall back to ``dev_default``."""
    value = os.environ.get(name)
    if value:
        return value
    if debug and dev_default is not None:
        return dev_default
    raise ImproperlyConfigured(
        f"{name} is not set. It is required when DEBUG is off; set it in the environment "
        f"(the Helm chart's values list it)."
    )


def repo_var_dir() -> Path:
    """The git-ignored folder for development state (SQLite files, dev keys)."""
    configured = os.environ.get("BAZAAR_VAR_DIR")
    path = Path(configured) if configured else Path(__file__).resolve().parents[2] / "var"
    path.mkdir(parents=True, exist_ok=True)
    return path


def database_config(service: str, *, conn_max_age: int = 60) -> dict[str, Any]:
    """The service's database.

    Connection budget (docs/capacity.md): Django holds one connection per thread that used the
    database, kept ``DB_CONN_MAX_AGE`` seconds (default ``conn_max_age``) so a request does not
    pay PostgreSQL's backend start (~2–5 ms of CPU) each time. A web instance therefore holds at
    most ``WEB_THREADS`` connections, a Celery worker one per pool process plus one for beat.
    A project whose database serves only its admin (the gateway) passes ``conn_max_age=0``: its
    requests close their connection, so the proxy path and idle threads hold none.
    """
    url = os.environ.get("DATABASE_URL") or f"sqlite:///{repo_var_dir() / f'{service}.sqlite3'}"
    config = dj_database_url.parse(url, conn_max_age=env_int("DB_CONN_MAX_AGE", conn_max_age))
    if config["ENGINE"] == "django.db.backends.sqlite3":
        # Several processes (web, worker) share one SQLite file in development: wait for locks
        # instead of failing, and let readers run beside the writer.
        config["OPTIONS"] = {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
        config["CONN_MAX_AGE"] = 0
    else:
        config["CONN_HEALTH_CHECKS"] = True
        if env_bool("DB_TRANSACTION_POOLING", False):
            # Behind PgBouncer in transaction mode consecutive statements may run on different
            # server connections: a named server-side cursor (.iterator()) would vanish between
            # its fetches. Django then uses client-side cursors.
            config["DISABLE_SERVER_SIDE_CURSORS"] = True
    config.setdefault("TEST", {})
    return config


def redis_url() -> str:
    return os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


def build_settings(*, service: str, package: str, apps: list[str], db_conn_max_age: int = 60) -> dict[str, Any]:
    """Everything the services have in common; the caller adds its own settings after."""
    debug = env_bool("DEBUG", False)
    secret_key = require_env("SECRET_KEY", debug=debug, dev_default=DEV_SECRET_KEY)
    if not debug and secret_key == DEV_SECRET_KEY:
        raise ImproperlyConfigured("SECRET_KEY is the public development key; set a real one.")
    cache_prefix = f"bazaar:{service}"
    return {
        "BAZAAR_SERVICE": service,
        "DEBUG": debug,
        "SECRET_KEY": secret_key,
        # Previous keys still accepted while SECRET_KEY is rotated (sessions, password-reset and
        # signed values made with them stay valid); comma separated, from the Secret.
        "SECRET_KEY_FALLBACKS": env_list("SECRET_KEY_FALLBACKS", []),
        "ALLOWED_HOSTS": env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"]),
        "INSTALLED_APPS": [
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
            *apps,
        ],
        "MIDDLEWARE": [
            "bazaar_common.request_id.RequestIdMiddleware",
            # Outside the rest, so that what they raise (a bad Host, a body over the limit) and
            # every HTML error page ends as a problem+json body.
            "bazaar_common.errors.JsonErrorMiddleware",
            "bazaar_common.headers.PrivateNoStoreMiddleware",
            "django_prometheus.middleware.PrometheusBeforeMiddleware",
            "django.middleware.security.SecurityMiddleware",
            "django.middleware.common.CommonMiddleware",
            # Static files, sessions, CSRF, the admin user and messages, for admin paths only:
            # API requests skip them (see bazaar_common.middleware, ADMIN_MIDDLEWARE below).
            "bazaar_common.middleware.AdminStackMiddleware",
            "django.middleware.clickjacking.XFrameOptionsMiddleware",
            "django_prometheus.middleware.PrometheusAfterMiddleware",
        ],
        "ADMIN_MIDDLEWARE": list(ADMIN_MIDDLEWARE),
        # The admin's checks look for its middleware in MIDDLEWARE; it runs inside
        # AdminStackMiddleware for every admin request (tests/common/test_middleware.py).
        "SILENCED_SYSTEM_CHECKS": ["admin.E408", "admin.E409", "admin.E410"],
        "ROOT_URLCONF": f"{package}.config.urls",
        "WSGI_APPLICATION": f"{package}.config.wsgi.application",
        "TEMPLATES": [
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
        ],
        "DATABASES": {"default": database_config(service, conn_max_age=db_conn_max_age)},
        "DEFAULT_AUTO_FIELD": "django.db.models.BigAutoField",
        "CACHES": {
            "default": {
                "BACKEND": "bazaar_common.cache.BazaarRedisCache",
                "LOCATION": redis_url(),
                "KEY_PREFIX": cache_prefix,
                "TIMEOUT": 300,
            }
        },
        "REDIS_URL": redis_url(),
        # Where auth writes each user's "not before" time and every service reads it.
        "REVOCATION_REDIS_URL": env("REVOCATION_REDIS_URL", redis_url()),
        # What /readyz fails on (bazaar_common.health): what this service's traffic cannot do
        # without. Everything else checked only degrades.
        "READINESS_REQUIRED": tuple(env_list("READINESS_REQUIRED", ["database"])),
        # Staff sign in to every admin with their Bazaar account (verified by the auth service).
        "AUTHENTICATION_BACKENDS": ["bazaar_common.auth.admin_backend.BazaarAdminBackend"],
        # Peers whose X-Forwarded-For is believed (the gateway); everyone else is REMOTE_ADDR.
        "TRUSTED_PROXIES": env_list("TRUSTED_PROXIES", ["127.0.0.1", "::1"] if debug else []),
        "AUTH_PASSWORD_VALIDATORS": [
            {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
            {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
            {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
            {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
        ],
        "LANGUAGE_CODE": "en-us",
        "TIME_ZONE": "UTC",
        "USE_I18N": True,
        "USE_TZ": True,
        "STATIC_URL": f"/static/{service}/",
        "STATIC_ROOT": str(repo_var_dir() / "static" / service),
        # In development files come straight from the apps; production images run collectstatic.
        "WHITENOISE_USE_FINDERS": debug,
        "WHITENOISE_AUTOREFRESH": debug,
        "REST_FRAMEWORK": {
            "DEFAULT_AUTHENTICATION_CLASSES": ["bazaar_common.auth.authentication.JWTAuthentication"],
            "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
            "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
            "DEFAULT_PARSER_CLASSES": ["bazaar_common.parsers.BoundedJSONParser"],
            "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
            "DEFAULT_PAGINATION_CLASS": "bazaar_common.pagination.BazaarPagination",
            "PAGE_SIZE": 20,
            "EXCEPTION_HANDLER": "bazaar_common.errors.problem_exception_handler",
            "UNAUTHENTICATED_USER": None,
        },
        "SPECTACULAR_SETTINGS": {
            "TITLE": f"Bazaar {service} API",
            "VERSION": "1.0.0",
            "SERVE_INCLUDE_SCHEMA": False,
            "COMPONENT_SPLIT_REQUEST": True,
        },
        **celery_settings(),
        "LOGGING": logging_config(service),
        "SESSION_COOKIE_NAME": f"bazaar_{service}_session",
        "CSRF_COOKIE_NAME": f"bazaar_{service}_csrftoken",
        "SECURE_CONTENT_TYPE_NOSNIFF": True,
        # Behind an ingress that terminates TLS: trust its X-Forwarded-Proto, and list the
        # public origins of the admins so their forms pass the CSRF origin check.
        "CSRF_TRUSTED_ORIGINS": env_list("CSRF_TRUSTED_ORIGINS", []),
        "SECURE_PROXY_SSL_HEADER": ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("BEHIND_TLS_PROXY") else None,
        "X_FRAME_OPTIONS": "DENY",
        "DATA_UPLOAD_MAX_MEMORY_SIZE": env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 2 * 1024 * 1024),
        "API_JSON_MAX_DEPTH": env_int("API_JSON_MAX_DEPTH", 32),
        # Error reports never carry a credential, and development mode shows no debug page.
        "DEFAULT_EXCEPTION_REPORTER_FILTER": "bazaar_common.errors.MaskingExceptionReporterFilter",
        "DEFAULT_EXCEPTION_REPORTER": "bazaar_common.errors.ProblemExceptionReporter",
        "DISCOVERY_TTL_SECONDS": env_float("DISCOVERY_TTL_SECONDS", 6.0),
        "DISCOVERY_HEARTBEAT_SECONDS": env_float("DISCOVERY_HEARTBEAT_SECONDS", 2.0),
        # Delivery of messages to their consumer (see bazaar_common.outbox.services): the first
        # wait for an acknowledgement, doubled after every re-send up to the cap, and how many
        # sends before the flow is settled safely and flagged for support.
        "OUTBOX_ACK_TIMEOUT_SECONDS": env_float("OUTBOX_ACK_TIMEOUT_SECONDS", 30.0),
        "OUTBOX_ACK_BACKOFF_MAX_SECONDS": env_float("OUTBOX_ACK_BACKOFF_MAX_SECONDS", 600.0),
        "OUTBOX_MAX_ATTEMPTS": env_int("OUTBOX_MAX_ATTEMPTS", 10),
    }


def celery_settings() -> dict[str, Any]:
    """Broker and task settings (``CELERY_`` namespace); the trade-offs are in ``celery.py``."""
    from bazaar_common.celery import broker_settings

    broker_url = env("CELERY_BROKER_URL") or redis_url()
    tuned = broker_settings(
        broker_url,
        visibility_timeout=env_int("CELERY_VISIBILITY_TIMEOUT_SECONDS", 60),
        restore_seconds=env_int("CELERY_UNACKED_RESTORE_SECONDS", 5),
        heartbeat_seconds=env_int("CELERY_BROKER_HEARTBEAT_SECONDS", 10),
        task_time_limit=env_int("CELERY_TASK_TIME_LIMIT_SECONDS", 30),
    )
    return {
        "CELERY_BROKER_URL": broker_url,
        "CELERY_TASK_ALWAYS_EAGER": env_bool("CELERY_TASK_ALWAYS_EAGER", False),
        **{f"CELERY_{name.upper()}": value for name, value in tuned.items()},
    }


def logging_config(service: str) -> dict[str, Any]:
    level = os.environ.get("LOG_LEVEL", "INFO").upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": "bazaar_common.logging.ContextFilter", "service": service}},
        "formatters": {"json": {"()": "bazaar_common.logging.JsonFormatter"}},
        "handlers": {"stdout": {"class": "logging.StreamHandler", "formatter": "json", "filters": ["context"]}},
        "root": {"handlers": ["stdout"], "level": level},
        "loggers": {
            "django.db.backends": {"level": "WARNING"},
            # Request logs come from our own middleware, with the request id and timing.
            "django.server": {"level": "WARNING"},
        },
    }
