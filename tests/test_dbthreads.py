"""Database work off the event loop gives its connection back (PostgreSQL's pool is bounded)."""

from __future__ import annotations

import pytest
from django.db import connections

from ccsite.dbthreads import off_loop


@pytest.mark.django_db(transaction=True)
async def test_a_worker_thread_closes_its_connection_when_the_work_is_done():
    seen = {}

    def query() -> int:
        connection = connections["default"]
        seen["wrapper"] = connection
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            value = cursor.fetchone()[0]
        seen["open_during"] = connection.connection is not None
        return value

    assert await off_loop(query)() == 1
    assert seen["open_during"] and seen["wrapper"].connection is None
