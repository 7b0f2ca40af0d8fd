"""/health with Redis configured: a real redis-server on loopback, then the same one stopped."""

from __future__ import annotations

import shutil

import pytest

from ccsite.localservices import Redis, free_port

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed"),
]


@pytest.fixture
def redis_server(tmp_path):
    server = Redis(tmp_path / "redis", free_port()).start()
    yield server
    server.stop()


def _use_redis(settings, url: str) -> None:
    settings.REDIS_URL = url
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": url,
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }


async def test_health_says_redis_answers_then_degrades_when_it_stops(async_client, settings, redis_server):
    _use_redis(settings, redis_server.url)
    response = await async_client.get("/health")
    assert response.status_code == 200
    assert response.json()["redis"] == "ok" and response.json()["status"] == "ok"

    redis_server.stop()
    response = await async_client.get("/health")
    assert response.status_code == 503
    assert response.json()["redis"] == "unavailable" and response.json()["status"] == "degraded"
    assert response.json()["database"] == "ok"
