"""Database work on a worker thread that gives its connection back when it is done.

``sync_to_async(func, thread_sensitive=False)`` runs ``func`` on one of the event loop's
executor threads, and Django keeps a connection per thread until someone closes it. Outside a
request nobody does: with PostgreSQL's pool (``CCSITE_DB_POOL_MAX_SIZE``, 10 by default) every
executor thread that ever touched the database would hold one of its connections for good, and
a host with more cores than that (the default executor has cores + 4 threads) would run out.
``off_loop(func)`` is ``sync_to_async(func, thread_sensitive=False)`` that closes the thread's
connections afterwards; a pooled connection goes back to the pool. A healthy SQLite connection
is kept: it holds no pool slot, and opening one is not cheap (Django registers its SQL
functions on every new connection), which the change poller did twice a second and the
credential writer after requests: about 1% of the gateway's CPU at 400 requests/s.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from asgiref.sync import sync_to_async
from django.db import connections

P = ParamSpec("P")
R = TypeVar("R")


def release_connections() -> None:
    """Close this thread's database connections, except a healthy SQLite one."""
    for connection in connections.all(initialized_only=True):
        if connection.vendor != "sqlite" or connection.errors_occurred or connection.in_atomic_block:
            connection.close()


def releasing_connections(func: Callable[P, R]) -> Callable[P, R]:
    """Wrap a sync function so the calling thread's database connections are released after it."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        finally:
            release_connections()

    return wrapper


def off_loop(func: Callable[P, R]) -> Callable[P, Awaitable[R]]:
    """``func`` on an executor thread, its database connections given back when it returns."""
    return sync_to_async(releasing_connections(func), thread_sensitive=False)
