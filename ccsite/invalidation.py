"""A cross-process change signal for in-process snapshots (catalog, credentials, limits, ...).

Hot paths read process-local snapshots and never query per request; when an operator changes
the data behind one, every gateway process must reload it. This module is the one way to say
"``name`` changed" and to react to it.

API
    ``bump(name)``  (sync; call it from admin actions, services, management commands)
        Increments the version of ``name`` in the ``catalog_changeversion`` table (in the
        caller's transaction; a row made anew starts from the clock, so a version never
        repeats after the table is emptied) and runs every reload registered for ``name`` in the calling
        process at once. Every other gateway process notices the new version on its next poll
        (every ``CCSITE_INVALIDATION_POLL_SECONDS``, default 0.5 s) and runs its own reloads,
        so a change is obeyed everywhere within about a second. From async code call it through
        ``sync_to_async``.
    ``on_change(name, reload)``
        Register ``reload()`` (sync, may query the database) to run when ``name`` is bumped;
        it also runs once when the gateway process starts (``start``). Register from an
        ``AppConfig.ready``; registering twice the same callable is a no-op.
    ``on_start(factory)``
        Register ``factory()`` -> coroutine, started as a background task of the gateway process
        at ``start`` (e.g. a periodic refresh: no extra daemon).
    ``loaded_versions()``
        ``{name: version}`` this process has loaded (GET /health shows it as ``snapshots``):
        a process serves a change once its version here equals the table's.
    ``await start()``
        Called by the gateway's ASGI handler on its first request (``started`` is then True):
        runs every registered reload once, then polls the versions in the background. One
        small query per poll, off the hot path; nothing per request.

Backends: the version table works with SQLite shared by several Daphne processes and with
PostgreSQL, no Redis needed. With REDIS_URL set, ``bump`` also increments the Redis key
``ccsite:changes:<name>`` once the transaction commits (a key made anew also starts from the
clock), and the poll is one ``MGET`` of those keys instead of a query (the tables stay the
source of truth). A failed poll is logged and
retried on the next tick; reload errors are logged and the old snapshot kept.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F

from ccsite.dbthreads import off_loop

logger = logging.getLogger(__name__)

Reload = Callable[[], None]
TaskFactory = Callable[[], Coroutine[Any, Any, None]]

_reloads: dict[str, list[Reload]] = {}
_start_tasks: list[TaskFactory] = []
_seen: dict[str, int] = {}
_background: set[asyncio.Task[None]] = set()
_starting: asyncio.Lock | None = None
started = False


def on_change(name: str, reload: Reload) -> None:
    callbacks = _reloads.setdefault(name, [])
    if reload not in callbacks:
        callbacks.append(reload)


def on_start(factory: TaskFactory) -> None:
    if factory not in _start_tasks:
        _start_tasks.append(factory)


def bump(name: str) -> None:
    """Mark ``name`` changed: reload here at once, everywhere else within a poll interval."""
    from catalog.models import ChangeVersion

    updated = ChangeVersion.objects.filter(name=name).update(version=F("version") + 1)
    if not updated:
        ChangeVersion.objects.get_or_create(name=name, defaults={"version": _fresh_version()})
    if settings.REDIS_URL:
        # After the commit, or another process could reload before the change is visible.
        transaction.on_commit(lambda: _redis_bump(REDIS_PREFIX + name))
    run_reloads(name)


def _fresh_version() -> int:
    """The first version of a row (or Redis key) made anew: the clock in nanoseconds, never 1.

    A poll reads the version, then the data. When the table is emptied (a flush, a restore)
    and the row starts over, a row restarting at 1 could repeat the very version a process
    took with data it read in between (the emptied tables): equal versions, no reload, a stale
    snapshot kept. A restart from the clock is beyond every version counted before it."""
    return time.time_ns()


def run_reloads(name: str) -> None:
    for reload in _reloads.get(name, ()):
        try:
            reload()
        except Exception:  # keep the old snapshot; the next bump or poll tries again
            logger.exception("reload of %r failed", name)


REDIS_PREFIX = "ccsite:changes:"
_redis_client: Any = None


def _redis() -> Any:
    global _redis_client
    if _redis_client is None:
        import redis

        _redis_client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2)
    return _redis_client


def _redis_bump(key: str) -> None:
    client = _redis()
    client.set(key, _fresh_version(), nx=True)  # a key made anew (FLUSHDB, a restart): the clock
    client.incr(key)


def read_versions() -> dict[str, int]:
    from catalog.models import ChangeVersion

    if settings.REDIS_URL:
        names = sorted(_reloads)
        values = _redis().mget([REDIS_PREFIX + name for name in names]) if names else []
        return {name: int(value) for name, value in zip(names, values, strict=True) if value is not None}
    return dict(ChangeVersion.objects.values_list("name", "version"))


def loaded_versions() -> dict[str, int]:
    """The version of each name whose data this process last loaded (read before the data)."""
    return dict(_seen)


def poll_once() -> list[str]:
    """Reload every registered name whose version moved since the last poll; the names."""
    versions = read_versions()
    changed = [name for name in _reloads if versions.get(name, 0) != _seen.get(name, 0)]
    for name in changed:
        _seen[name] = versions.get(name, 0)
        run_reloads(name)
    return changed


def _poll_tick() -> None:
    poll_once()  # on an off_loop thread, which releases its connection afterwards


def _initial_load() -> None:
    _seen.update(read_versions())
    for name in list(_reloads):
        run_reloads(name)


async def _poll_forever() -> None:
    interval = settings.CCSITE_INVALIDATION_POLL_SECONDS
    while True:
        await asyncio.sleep(interval)
        try:
            await off_loop(_poll_tick)()
        except Exception:
            logger.exception("change-version poll failed; retrying")


def _spawn(coroutine: Coroutine[Any, Any, None]) -> None:
    task = asyncio.get_running_loop().create_task(coroutine)
    _background.add(task)  # a strong reference, or the loop may drop the task
    task.add_done_callback(_background.discard)


async def start() -> None:
    """Load every snapshot and start polling (once per process; later calls return at once)."""
    global started, _starting
    if started:
        return
    if _starting is None:
        _starting = asyncio.Lock()
    async with _starting:
        if started:
            return
        try:
            await off_loop(_initial_load)()
        except Exception:
            logger.exception("initial snapshot load failed; the poller will retry")
        _spawn(_poll_forever())
        for factory in _start_tasks:
            _spawn(factory())
        started = True
