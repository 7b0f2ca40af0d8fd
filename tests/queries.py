"""Count SQL queries from any thread: the async ORM runs its queries in a worker thread, where
Django's own CaptureQueriesContext (bound to one thread's connection) cannot see them."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from django.db.backends import utils


class QueryLog:
    def __init__(self) -> None:
        self.sql: list[str] = []
        self._lock = threading.Lock()

    def add(self, sql: str) -> None:
        with self._lock:
            self.sql.append(sql)

    def __len__(self) -> int:
        return len(self.sql)


@contextlib.contextmanager
def count_queries() -> Iterator[QueryLog]:
    log = QueryLog()
    original = utils.CursorWrapper._execute_with_wrappers

    def counting(self, sql, params, many, executor):  # type: ignore[no-untyped-def]
        log.add(sql)
        return original(self, sql, params, many, executor)

    utils.CursorWrapper._execute_with_wrappers = counting  # type: ignore[method-assign]
    try:
        yield log
    finally:
        utils.CursorWrapper._execute_with_wrappers = original  # type: ignore[method-assign]
