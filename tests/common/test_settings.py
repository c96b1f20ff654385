"""Settings come from the environment, and production refuses to start without its secrets."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from bazaar_common.settings import DEV_SECRET_KEY, build_settings, database_config, env_bool, env_list


def test_production_without_secret_key_refuses_naming_the_variable(monkeypatch):
    monkeypatch.setenv("DEBUG", "0")
    monkeypatch.delenv("SECRET_KEY", raising=False)

    with pytest.raises(ImproperlyConfigured, match="SECRET_KEY is not set"):
        build_settings(service="catalog", package="catalog_service", apps=[])


def test_production_with_the_public_development_key_refuses(monkeypatch):
    monkeypatch.setenv("DEBUG", "0")
    monkeypatch.setenv("SECRET_KEY", DEV_SECRET_KEY)

    with pytest.raises(ImproperlyConfigured, match="public development key"):
        build_settings(service="catalog", package="catalog_service", apps=[])


def test_development_falls_back_to_the_development_key(monkeypatch):
    monkeypatch.setenv("DEBUG", "1")
    monkeypatch.delenv("SECRET_KEY", raising=False)

    settings = build_settings(service="catalog", package="catalog_service", apps=["x.y"])

    assert settings["SECRET_KEY"] == DEV_SECRET_KEY
    assert settings["INSTALLED_APPS"][-1] == "x.y"
    assert settings["ROOT_URLCONF"] == "catalog_service.config.urls"


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
    built = build_settings(service="catalog", package="catalog_service", apps=[])

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
