"""GET /health: liveness, the database and Redis, and which process answered.

For load balancers, `make run` users and operators of several processes: ``pid`` tells which
gateway process served the call, so repeated calls through a reverse proxy show the balancing.
``snapshots`` gives the change version of each in-process snapshot it serves (see
ccsite/invalidation.py), so an operator can tell when every process obeys a change.
Answers 503 (``"status": "degraded"``) when the database, or Redis where it is configured, does
not answer.
"""

from __future__ import annotations

import logging
import os

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse

from ccsite import invalidation
from proxy.surfaces import json_response

logger = logging.getLogger(__name__)


def _database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone() == (1,)
    except DatabaseError:
        return False


async def _redis_state() -> str:
    """``ok``, ``unavailable``, or ``not configured`` (no REDIS_URL: process memory)."""
    if not settings.REDIS_URL:
        return "not configured"
    try:
        # The cache is Redis when REDIS_URL is set (settings); a round trip proves it answers.
        await cache.aset("health", os.getpid(), timeout=10)
        await cache.aget("health")
    except Exception as exc:  # redis-py raises its own ConnectionError/TimeoutError types
        logger.warning("health: Redis does not answer: %s", exc)
        return "unavailable"
    return "ok"


async def health(request: HttpRequest) -> HttpResponse:
    database_ok = await sync_to_async(_database_ok)()
    redis = await _redis_state()
    healthy = database_ok and redis != "unavailable"
    body = {
        "status": "ok" if healthy else "degraded",
        "version": settings.VERSION,
        "database": "ok" if database_ok else "unavailable",
        "database_engine": connection.vendor,
        "redis": redis,
        "pid": os.getpid(),
        "snapshots": invalidation.loaded_versions(),
    }
    return json_response(body, status=200 if healthy else 503)
