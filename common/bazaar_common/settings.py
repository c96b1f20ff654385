"""Environment-driven settings shared by every Bazaar Django project (12-factor).

The settings every service shares are module-level names in :mod:`bazaar_common.shared_settings`;
a service's ``config/settings.py`` names itself, star-imports them and then adds what is its own::

    from bazaar_common.settings import identify

    identify("catalog", package="catalog_service")
    from bazaar_common.shared_settings import *  # noqa: E402,F403
    from bazaar_common.shared_settings import INSTALLED_APPS as SHARED_APPS  # noqa: E402

    INSTALLED_APPS = [*SHARED_APPS, "catalog_service.products"]

Every setting is then a plain assignment that Django, mypy (``strict_settings``) and a reader see.

Production differs from development only through environment variables. With ``DEBUG`` off a
service refuses to start without the secrets it needs, naming the variable.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

# The development secret is public on purpose: it only ever signs development sessions.
DEV_SECRET_KEY = "bazaar-insecure-development-key-do-not-use-in-production"
TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off", ""}


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

    ``DB_POOLER_HOST``/``DB_POOLER_PORT`` send the connections to a pooler instead of the server in
    ``DATABASE_URL``; with ``DB_TRANSACTION_POOLING=1`` (PgBouncer's transaction mode) the server
    side then needs only as many connections as transactions run at once.
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
        # Tests on a file too, not Django's shared-cache in-memory database: there a second thread
        # (the outbox publisher, a concurrent request) gets "database table is locked" at once
        # instead of waiting, as it does on a file with the timeout above.
        config["TEST"] = {"NAME": str(repo_var_dir() / f"test_{service}.sqlite3")}
    else:
        config["CONN_HEALTH_CHECKS"] = True
        pooler_host = env("DB_POOLER_HOST")
        if pooler_host:
            # A connection pooler (the chart's PgBouncer) in front of the server DATABASE_URL
            # names: same database, user and password, another address. Migrations run without
            # it (the chart leaves these unset on its migration Jobs) and reach the server directly.
            config["HOST"] = pooler_host
            config["PORT"] = env_int("DB_POOLER_PORT", 6432)
        if env_bool("DB_TRANSACTION_POOLING", False):
            # Behind PgBouncer in transaction mode consecutive statements may run on different
            # server connections: a named server-side cursor (.iterator()) would vanish between
            # its fetches. Django then uses client-side cursors.
            config["DISABLE_SERVER_SIDE_CURSORS"] = True
    config.setdefault("TEST", {})
    return dict(config)


def redis_url() -> str:
    return os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


def checked_secret_key(*, debug: bool) -> str:
    """``SECRET_KEY``; development falls back to the public key, production refuses it."""
    secret_key = require_env("SECRET_KEY", debug=debug, dev_default=DEV_SECRET_KEY)
    if not debug and secret_key == DEV_SECRET_KEY:
        raise ImproperlyConfigured("SECRET_KEY is the public development key; set a real one.")
    return secret_key


@dataclass(frozen=True)
class ServiceIdentity:
    name: str  # "orders": its database file, cache prefix, cookies, log lines
    package: str  # "order_service": where its urls and wsgi application are


_identity: ServiceIdentity | None = None


def identify(service: str, *, package: str) -> None:
    """Name the service whose settings this process loads. Its ``config/settings.py`` calls this
    first, then star-imports :mod:`bazaar_common.shared_settings`, whose service-dependent names
    (``DATABASES``, ``CACHES``, ``ROOT_URLCONF``, …) follow from it. A process loads one service's
    settings (as Django does); naming a second one is an error, not a silent mix."""
    global _identity
    wanted = ServiceIdentity(service, package)
    if _identity is not None and _identity != wanted:
        raise ImproperlyConfigured(f"This process loads the {_identity.name} settings; it cannot load {service}'s too.")
    _identity = wanted


def identity() -> ServiceIdentity:
    if _identity is None:
        raise ImproperlyConfigured(
            "bazaar_common.settings.identify(service, package=...) must be called before "
            "bazaar_common.shared_settings is imported (see a service's config/settings.py)."
        )
    return _identity


def celery_broker_url() -> str:
    return env("CELERY_BROKER_URL") or redis_url()


def celery_broker_settings(broker_url: str) -> dict[str, Any]:
    """The broker-dependent Celery settings (``CELERY_``-less names), from the environment; the
    trade-offs are in ``celery.py``. ``make_celery_app`` applies them to the app."""
    from bazaar_common.celery import broker_settings

    return broker_settings(
        broker_url,
        visibility_timeout=env_int("CELERY_VISIBILITY_TIMEOUT_SECONDS", 60),
        restore_seconds=env_int("CELERY_UNACKED_RESTORE_SECONDS", 5),
        heartbeat_seconds=env_int("CELERY_BROKER_HEARTBEAT_SECONDS", 10),
        task_time_limit=env_int("CELERY_TASK_TIME_LIMIT_SECONDS", 30),
        retry_backoff_max=celery_retry_backoff_max(),
    )


def celery_retry_backoff_max() -> int:
    """The longest countdown of a consumer's retry (seconds); the Redis visibility timeout must
    cover it plus the task's hard limit."""
    return env_int("CELERY_RETRY_BACKOFF_MAX_SECONDS", 30)


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
