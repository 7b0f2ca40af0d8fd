"""Database work off the event loop gives its connection back (PostgreSQL's pool is bounded);
a healthy SQLite connection, which holds no pool slot and is slow to open, is kept."""

from __future__ import annotations

import pytest
from django.db import connections

from ccsite.dbthreads import off_loop


def _query(seen: dict[str, object], *, fail: bool = False) -> int:
    connection = connections["default"]
    seen["wrapper"] = connection
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        value = cursor.fetchone()[0]
    seen["open_during"] = connection.connection is not None
    if fail:
        connection.errors_occurred = True  # what Django sets when a database error went by
    return value


@pytest.mark.django_db(transaction=True)
async def test_a_worker_thread_gives_its_connection_back_unless_it_is_a_healthy_sqlite_one():
    seen: dict[str, object] = {}
    assert await off_loop(_query)(seen) == 1
    wrapper = seen["wrapper"]
    assert seen["open_during"]
    if wrapper.vendor == "sqlite":
        assert wrapper.connection is not None  # kept for the next call on this thread
    else:
        assert wrapper.connection is None  # back in the pool


@pytest.mark.django_db(transaction=True)
async def test_a_connection_that_saw_an_error_is_closed_whatever_the_database():
    seen: dict[str, object] = {}
    assert await off_loop(_query)(seen, fail=True) == 1
    assert seen["open_during"] and seen["wrapper"].connection is None
