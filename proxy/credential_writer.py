"""Routing's facts about credentials (last use, last error, cooldown, disable), written off the
request path.

``note(credential_id, **fields)`` only merges into a per-credential dict (no await, no query);
a background task flushes the merged fields with one UPDATE per credential at most every
``FLUSH_SECONDS``. Later facts overwrite earlier ones, so a busy key costs one write per flush,
not one per request. A failed write is logged and the fields are kept for the next flush.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from typing import Any

from ccsite.dbthreads import off_loop

logger = logging.getLogger(__name__)

FLUSH_SECONDS = 0.5

_pending: dict[int, dict[str, Any]] = {}
_task: asyncio.Task[None] | None = None
_after_flush: list[Any] = []


def note(credential_id: int, **fields: Any) -> None:
    _pending.setdefault(credential_id, {}).update(fields)
    _ensure_task()


def on_flush(callback: Any) -> None:
    """Call ``callback(ids)`` (sync, in the loop) after a flush that wrote ``ids``."""
    _after_flush.append(callback)


def _ensure_task() -> None:
    global _task
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return  # no loop (a sync caller): flush() writes it later
    if _task is None or _task.done() or _task.get_loop() is not loop:
        _task = loop.create_task(_flush_soon())


async def _flush_soon() -> None:
    await asyncio.sleep(FLUSH_SECONDS)
    await flush()


def _write(batch: dict[int, dict[str, Any]]) -> None:
    from accounts.models import UpstreamCredential

    for credential_id, fields in batch.items():
        UpstreamCredential.objects.filter(pk=credential_id).update(**fields)


_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()


async def flush() -> None:
    """Write everything noted so far, after any write already under way (tests, shutdown)."""
    loop = asyncio.get_running_loop()
    lock = _locks.get(loop)
    if lock is None:
        lock = _locks[loop] = asyncio.Lock()
    async with lock:
        await _write_pending()


async def _write_pending() -> None:
    if not _pending:
        return
    batch = dict(_pending)
    _pending.clear()
    try:
        await off_loop(_write)(batch)
    except Exception:
        logger.exception("could not write credential routing state; will retry")
        for credential_id, fields in batch.items():
            _pending.setdefault(credential_id, {}).update(
                {k: v for k, v in fields.items() if k not in _pending.get(credential_id, {})}
            )
        _ensure_task()
        return
    for callback in _after_flush:
        with contextlib.suppress(Exception):
            callback(set(batch))
