"""GET /health: liveness and a database check, for load balancers and `make run` users."""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse

from proxy.surfaces import json_response


def _database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone() == (1,)
    except DatabaseError:
        return False


async def health(request: HttpRequest) -> HttpResponse:
    database_ok = await sync_to_async(_database_ok)()
    body = {
        "status": "ok" if database_ok else "degraded",
        "version": settings.VERSION,
        "database": "ok" if database_ok else "unavailable",
    }
    return json_response(body, status=200 if database_ok else 503)
