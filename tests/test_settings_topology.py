"""DATABASE_URL and REDIS_URL select PostgreSQL (psycopg 3 with Django's pool) and Redis."""

from __future__ import annotations

import importlib

import pytest
from django.core.exceptions import ImproperlyConfigured

import ccsite.settings as settings_module


@pytest.fixture
def reload_settings(monkeypatch):
    monkeypatch.setenv("CCSITE_ENV_FILE", "")

    def reload(**env: str):
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        return importlib.reload(settings_module)

    yield reload
    monkeypatch.undo()
    importlib.reload(settings_module)


def test_postgres_url_gives_psycopg_with_a_pool_and_no_persistent_connections(reload_settings):
    settings = reload_settings(
        DATABASE_URL="postgres://gw:s%40cret@db.internal:6432/ccsite?sslmode=require",
        CCSITE_DB_POOL_MAX_SIZE="7",
    )
    database = settings.DATABASES["default"]
    assert database["ENGINE"] == "django.db.backends.postgresql"
    assert (database["HOST"], database["PORT"], database["NAME"]) == ("db.internal", 6432, "ccsite")
    assert (database["USER"], database["PASSWORD"]) == ("gw", "s@cret")
    assert database["CONN_MAX_AGE"] == 0  # Django refuses a pool with persistent connections
    assert database["OPTIONS"]["sslmode"] == "require"
    assert database["OPTIONS"]["pool"] == {"min_size": 2, "max_size": 7, "timeout": 10.0}


def test_any_other_database_url_is_refused(reload_settings):
    with pytest.raises(ImproperlyConfigured, match="postgres"):
        reload_settings(DATABASE_URL="mysql://db/ccsite")


def test_sqlite_and_process_memory_without_urls(reload_settings, monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    settings = reload_settings()
    assert settings.DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3"
    assert settings.CACHES["default"]["BACKEND"].endswith("LocMemCache")
    assert settings.CHANNEL_LAYERS["default"]["BACKEND"] == "channels.layers.InMemoryChannelLayer"


def test_redis_url_gives_the_redis_cache_and_the_channels_redis_layer(reload_settings):
    settings = reload_settings(REDIS_URL="redis://cache.internal:6379/2")
    assert settings.CACHES["default"]["BACKEND"] == "django.core.cache.backends.redis.RedisCache"
    assert settings.CACHES["default"]["LOCATION"] == "redis://cache.internal:6379/2"
    layer = settings.CHANNEL_LAYERS["default"]
    assert layer["BACKEND"] == "channels_redis.core.RedisChannelLayer"
    assert layer["CONFIG"]["hosts"] == ["redis://cache.internal:6379/2"]
