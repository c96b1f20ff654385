"""Settings come from the environment, and production refuses to start without its secrets."""

from __future__ import annotations

import runpy

import pytest
from django.core.exceptions import ImproperlyConfigured

from bazaar_common.settings import DEV_SECRET_KEY, database_config, env_bool, env_list, identify


def shared_settings() -> dict:
    """The shared settings module run afresh against the environment as it is now."""
    import bazaar_common.shared_settings

    return runpy.run_path(bazaar_common.shared_settings.__file__)


def test_production_without_secret_key_refuses_naming_the_variable(monkeypatch):
    monkeypatch.setenv("DEBUG", "0")
    monkeypatch.delenv("SECRET_KEY", raising=False)

    with pytest.raises(ImproperlyConfigured, match="SECRET_KEY is not set"):
        shared_settings()


def test_production_with_the_public_development_key_refuses(monkeypatch):
    monkeypatch.setenv("DEBUG", "0")
    monkeypatch.setenv("SECRET_KEY", DEV_SECRET_KEY)

    with pytest.raises(ImproperlyConfigured, match="public development key"):
        shared_settings()


def test_development_falls_back_to_the_development_key(monkeypatch):
    monkeypatch.setenv("DEBUG", "1")
    monkeypatch.delenv("SECRET_KEY", raising=False)

    assert shared_settings()["SECRET_KEY"] == DEV_SECRET_KEY


def test_what_names_the_service_follows_from_the_name_it_gave(monkeypatch, tmp_path):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("BAZAAR_VAR_DIR", str(tmp_path))

    shared = shared_settings()  # this process loads the catalog's settings (identify("catalog", ...))

    assert (shared["BAZAAR_SERVICE"], shared["ROOT_URLCONF"], shared["WSGI_APPLICATION"]) == (
        "catalog",
        "catalog_service.config.urls",
        "catalog_service.config.wsgi.application",
    )
    assert shared["DATABASES"]["default"]["NAME"] == str(tmp_path / "catalog.sqlite3")
    assert shared["CACHES"]["default"]["KEY_PREFIX"] == "bazaar:catalog"
    assert (shared["SESSION_COOKIE_NAME"], shared["STATIC_URL"]) == ("bazaar_catalog_session", "/static/catalog/")


def test_a_process_cannot_load_a_second_services_settings():
    with pytest.raises(ImproperlyConfigured, match="loads the catalog settings; it cannot load orders's too"):
        identify("orders", package="order_service")
    identify("catalog", package="catalog_service")  # the same again is fine


def test_every_setting_of_a_service_is_a_plain_name_no_globals_update():
    """What Django reads is what mypy (strict_settings) and a reader see in the modules."""
    import inspect

    from django.conf import settings

    import bazaar_common.shared_settings

    for module in (__import__(settings.SETTINGS_MODULE, fromlist=["x"]), bazaar_common.shared_settings):
        assert "globals()" not in inspect.getsource(module)
    assert settings.BAZAAR_SERVICE == "catalog"


def test_default_database_is_one_sqlite_file_per_service_under_var(monkeypatch, tmp_path):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("BAZAAR_VAR_DIR", str(tmp_path))

    config = database_config("orders")

    assert config["ENGINE"] == "django.db.backends.sqlite3"
    assert config["NAME"] == str(tmp_path / "orders.sqlite3")


def test_database_url_selects_postgresql(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgres://bazaar:pw@db.internal:5433/bazaar_orders")

    config = database_config("orders")

    assert config["ENGINE"] == "django.db.backends.postgresql"
    assert (config["HOST"], config["PORT"], config["NAME"]) == ("db.internal", 5433, "bazaar_orders")
    assert config["CONN_HEALTH_CHECKS"] is True


def test_a_boolean_that_is_not_one_is_an_error_not_a_guess(monkeypatch):
    monkeypatch.setenv("DEBUG", "maybe")

    with pytest.raises(ImproperlyConfigured, match="DEBUG must be a boolean"):
        env_bool("DEBUG")


def test_lists_are_comma_separated_and_trimmed(monkeypatch):
    monkeypatch.setenv("ALLOWED_HOSTS", " a.example, b.example ,,")

    assert env_list("ALLOWED_HOSTS") == ["a.example", "b.example"]


def test_a_rotated_secret_key_keeps_the_previous_ones_as_fallbacks(monkeypatch):
    """SECRET_KEY rotation without logging everybody out: values signed with the old key verify."""
    from django.core import signing

    monkeypatch.setenv("DEBUG", "0")
    monkeypatch.setenv("SECRET_KEY", "the-new-key-" + "x" * 40)
    monkeypatch.setenv("SECRET_KEY_FALLBACKS", "the-old-key-" + "y" * 40 + ", ")
    built = shared_settings()

    assert built["SECRET_KEY_FALLBACKS"] == ["the-old-key-" + "y" * 40]
    signed_before = signing.dumps({"session": 1}, key="the-old-key-" + "y" * 40)
    assert signing.loads(signed_before, key=built["SECRET_KEY"], fallback_keys=built["SECRET_KEY_FALLBACKS"]) == {
        "session": 1
    }


def test_transaction_pooling_turns_server_side_cursors_off(monkeypatch):
    """Behind PgBouncer's transaction mode a named cursor would not survive between fetches."""
    monkeypatch.setenv("DATABASE_URL", "postgres://u:p@pgbouncer.db:6432/bazaar_catalog")
    monkeypatch.delenv("DB_TRANSACTION_POOLING", raising=False)
    assert database_config("catalog").get("DISABLE_SERVER_SIDE_CURSORS", False) is False

    monkeypatch.setenv("DB_TRANSACTION_POOLING", "1")
    assert database_config("catalog")["DISABLE_SERVER_SIDE_CURSORS"] is True


def test_a_pooler_address_replaces_the_servers_and_keeps_the_rest(monkeypatch):
    """The chart points web, worker and beat pods at its PgBouncer; migrations stay direct."""
    monkeypatch.setenv("DATABASE_URL", "postgres://catalog:pw@db.internal:5432/bazaar_catalog")
    monkeypatch.delenv("DB_POOLER_HOST", raising=False)
    monkeypatch.delenv("DB_POOLER_PORT", raising=False)
    direct = database_config("catalog")
    assert (direct["HOST"], direct["PORT"]) == ("db.internal", 5432)

    monkeypatch.setenv("DB_POOLER_HOST", "bazaar-pgbouncer")
    pooled = database_config("catalog")
    assert (pooled["HOST"], pooled["PORT"]) == ("bazaar-pgbouncer", 6432)
    assert (pooled["NAME"], pooled["USER"], pooled["PASSWORD"]) == ("bazaar_catalog", "catalog", "pw")

    monkeypatch.setenv("DB_POOLER_PORT", "7432")
    assert database_config("catalog")["PORT"] == 7432


def test_no_retry_waits_so_long_that_redis_hands_it_to_a_second_worker(monkeypatch):
    """A consumer's retry is held unacknowledged until due: with the defaults its longest countdown
    plus the task's hard limit stays within the Redis visibility timeout (docs/broker.md)."""
    from bazaar_common.outbox.consumers import retry_options
    from bazaar_common.settings import celery_broker_settings

    limits = ("CELERY_VISIBILITY_TIMEOUT_SECONDS", "CELERY_TASK_TIME_LIMIT_SECONDS", "CELERY_RETRY_BACKOFF_MAX_SECONDS")
    for name in limits:
        monkeypatch.delenv(name, raising=False)
    tuned = celery_broker_settings("redis://127.0.0.1:6379/0")

    longest_countdown = retry_options()["retry_backoff_max"]
    assert longest_countdown + tuned["task_time_limit"] <= tuned["broker_transport_options"]["visibility_timeout"]


@pytest.mark.parametrize(
    ("visibility", "time_limit", "backoff"),
    [("20", "30", "30"), ("60", "45", "30"), ("40", "30", "15")],
)
def test_a_redis_visibility_timeout_shorter_than_a_worker_holds_a_message_is_refused(
    monkeypatch, visibility, time_limit, backoff
):
    """The rule is enforced, not only documented: settings under which Redis would hand a running
    or waiting task to a second worker stop the app at configuration, naming the three settings."""
    from bazaar_common.celery import BrokerMisconfigured
    from bazaar_common.settings import celery_broker_settings

    monkeypatch.setenv("CELERY_VISIBILITY_TIMEOUT_SECONDS", visibility)
    monkeypatch.setenv("CELERY_TASK_TIME_LIMIT_SECONDS", time_limit)
    monkeypatch.setenv("CELERY_RETRY_BACKOFF_MAX_SECONDS", backoff)
    with pytest.raises(BrokerMisconfigured, match="CELERY_VISIBILITY_TIMEOUT_SECONDS.*CELERY_TASK_TIME_LIMIT_SECONDS"):
        celery_broker_settings("redis://127.0.0.1:6379/0")

    # RabbitMQ redelivers on connection loss: it has no visibility timeout to get wrong.
    assert (
        "visibility_timeout"
        not in celery_broker_settings("amqp://guest:guest@127.0.0.1:5672//")["broker_transport_options"]
    )
    # A timeout that covers task and countdown is taken.
    monkeypatch.setenv("CELERY_VISIBILITY_TIMEOUT_SECONDS", str(int(time_limit) + int(backoff)))
    assert celery_broker_settings("redis://127.0.0.1:6379/0")["broker_transport_options"]["visibility_timeout"] == (
        int(time_limit) + int(backoff)
    )


def test_consumers_back_off_to_the_configured_cap(settings):
    from bazaar_common.outbox.consumers import retry_options

    settings.CELERY_RETRY_BACKOFF_MAX_SECONDS = 7
    assert retry_options()["retry_backoff_max"] == 7
