"""State that several gateway processes must agree on: counters, concurrency slots, deadlines.

One small interface, two back ends:

- ``MemoryState`` (the default): plain dicts in this process. Every method is ``async`` for a
  uniform call site, but none of them awaits anything, so on this path a call never yields to
  the event loop (no task switch can happen between a check and its update).
- ``RedisState`` (when ``REDIS_URL`` is set): redis-py's asyncio client; every operation is one
  atomic command or one Lua script, and every time-based rule (window boundaries, slot expiry)
  uses the Redis server's clock, so processes with skewed clocks still agree.

``shared_state()`` returns the process's instance (Redis if ``settings.REDIS_URL``, else
memory). Names are free-form strings chosen by the caller (convention: ``"<feature>:<what>:<id>"``,
e.g. ``"route:slots:7"``); Redis keys get the ``ccsite:`` prefix. Times are seconds (floats);
deadlines are Unix epoch seconds (``time.time()``), so they mean the same in every process.

API (all ``async``):

``hit(name, window_seconds, amount=1, limit=None, expires_at=None) -> WindowCount``
    Add ``amount`` to the counter of the current fixed window (windows are aligned to
    multiples of ``window_seconds`` since the epoch). With ``limit``, the add happens only if
    the total stays ``<= limit``; ``WindowCount.allowed`` says whether it did. Returns the
    window's total after the call and ``reset_at`` (epoch seconds the window ends). A counter
    is forgotten one second after its window ends, or at ``expires_at`` (epoch seconds) when
    given: a counter whose name carries its own period (a budget's calendar month) in one
    endless window says when it may go, so stored counters never pile up.
``window_total(name, window_seconds) -> WindowCount``
    The current window's total without changing it (``allowed`` is always True).
``acquire_slot(name, limit, ttl_seconds) -> str | None``
    Take one of ``limit`` concurrency slots; returns a token, or None when all are held.
    A slot expires ``ttl_seconds`` after it was taken or last renewed, so a process that
    crashes while holding one never leaks it for longer than that.
``renew_slot(name, token, ttl_seconds) -> bool``
    Push a held slot's expiry to ``ttl_seconds`` from now (False if it had expired already).
``renew_slots([(name, token), ...], ttl_seconds) -> int``
    ``renew_slot`` for many slots at once (one Redis round trip); how many were still held.
``release_slot(name, token) -> None``
    Give a slot back (idempotent; unknown tokens are ignored).
``slots_in_use(name) -> int``
    How many unexpired slots are held now.
``set_until(name, until, reason="") -> None``
    Record a deadline (e.g. a cooldown) with a short reason; it disappears once passed.
``get_until(name) -> Until | None`` / ``get_many_until(names) -> list[Until | None]``
    The deadline(s) still in the future, or None.
``clear(name) -> None``
    Forget a deadline, a claim or a ``next_index`` counter.
``claim(name, ttl_seconds) -> bool``
    True for exactly one caller until the claim expires or is cleared (half-open trials).
``next_index(name) -> int``
    A shared counter that increases by one per call, starting at 1 (round-robin position).
``close() -> None``
    Release network resources (Redis); memory does nothing.

``HeldSlots(ttl_seconds)`` keeps the slots of a process's running requests alive: a feature
``hold``s each slot it takes and ``drop``s it when the request ends; one background task per
process renews all held slots every ttl/3 seconds (one ``renew_slots`` call), and stops while
none are held. A request that lasts longer than the TTL keeps its slot; the slots of a process
that crashed expire one TTL after its last renewal.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol, TypeVar

__all__ = [
    "HeldSlots",
    "MemoryState",
    "RedisState",
    "SharedState",
    "Until",
    "WindowCount",
    "is_immediate",
    "run_now",
    "shared_state",
]

logger = logging.getLogger(__name__)
T = TypeVar("T")


class WindowCount(NamedTuple):
    """A counter's state after a ``hit`` (a named tuple: made on every limit check, and a
    frozen dataclass costs several times more to build)."""

    allowed: bool
    total: int
    reset_at: float  # epoch seconds when the current window ends


@dataclass(frozen=True, slots=True)
class Until:
    until: float  # epoch seconds
    reason: str


class SharedState(Protocol):
    async def hit(
        self,
        name: str,
        window_seconds: float,
        amount: int = 1,
        limit: int | None = None,
        expires_at: float | None = None,
    ) -> WindowCount: ...
    async def window_total(self, name: str, window_seconds: float) -> WindowCount: ...
    async def acquire_slot(self, name: str, limit: int, ttl_seconds: float) -> str | None: ...
    async def renew_slot(self, name: str, token: str, ttl_seconds: float) -> bool: ...
    async def renew_slots(self, slots: list[tuple[str, str]], ttl_seconds: float) -> int: ...
    async def release_slot(self, name: str, token: str) -> None: ...
    async def slots_in_use(self, name: str) -> int: ...
    async def set_until(self, name: str, until: float, reason: str = "") -> None: ...
    async def get_until(self, name: str) -> Until | None: ...
    async def get_many_until(self, names: list[str]) -> list[Until | None]: ...
    async def clear(self, name: str) -> None: ...
    async def claim(self, name: str, ttl_seconds: float) -> bool: ...
    async def next_index(self, name: str) -> int: ...
    async def close(self) -> None: ...


def _window_bounds(now: float, window_seconds: float) -> tuple[int, float]:
    index = math.floor(now / window_seconds)
    return index, (index + 1) * window_seconds


def is_immediate(state: object) -> bool:
    """True for a state whose calls never wait for I/O (process memory)."""
    return getattr(state, "immediate", False) is True


def run_now(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a call of a state whose methods never suspend (``immediate``) to its end, here and
    now: no task, no trip through the event loop. RuntimeError if it did suspend."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    coroutine.close()
    raise RuntimeError("a shared-state call suspended: it needs the event loop")


# Slot tokens of process memory need only be unique in this process: a counter, not a uuid4
# (a system call and an object per slot taken).
_memory_tokens = itertools.count(1)


class MemoryState:
    """Process-memory back end. No method awaits: each call runs to completion atomically."""

    SWEEP_SECONDS = 60.0
    immediate = True  # callers may finish its calls synchronously with run_now

    def __init__(self) -> None:
        self._windows: dict[str, tuple[int, int]] = {}  # name -> (window index, total)
        self._expires: dict[str, float] = {}  # name -> epoch seconds it may be forgotten
        self._next_sweep = 0.0
        self._slots: dict[str, dict[str, float]] = {}  # name -> token -> expires (monotonic)
        self._untils: dict[str, Until] = {}
        self._claims: dict[str, float] = {}  # name -> expires (monotonic)
        self._counters: dict[str, int] = {}

    async def hit(
        self,
        name: str,
        window_seconds: float,
        amount: int = 1,
        limit: int | None = None,
        expires_at: float | None = None,
    ) -> WindowCount:
        now = time.time()
        index, reset_at = _window_bounds(now, window_seconds)
        stored = self._windows.get(name)
        total = stored[1] if stored and stored[0] == index else 0
        if limit is not None and total + amount > limit:
            return WindowCount(False, total, reset_at)
        self._windows[name] = (index, total + amount)
        if expires_at is not None:
            self._expires[name] = expires_at
        if now >= self._next_sweep:
            self._sweep(now)
        return WindowCount(True, total + amount, reset_at)

    def _sweep(self, now: float) -> None:
        """Forget counters past their ``expires_at`` (at most once a minute: off the hot path)."""
        self._next_sweep = now + self.SWEEP_SECONDS
        for name in [name for name, until in self._expires.items() if until <= now]:
            del self._expires[name]
            self._windows.pop(name, None)

    async def window_total(self, name: str, window_seconds: float) -> WindowCount:
        index, reset_at = _window_bounds(time.time(), window_seconds)
        stored = self._windows.get(name)
        return WindowCount(True, stored[1] if stored and stored[0] == index else 0, reset_at)

    def _live_slots(self, name: str) -> dict[str, float]:
        slots = self._slots.setdefault(name, {})
        now = time.monotonic()
        for token in [token for token, expires in slots.items() if expires <= now]:
            del slots[token]
        return slots

    async def acquire_slot(self, name: str, limit: int, ttl_seconds: float) -> str | None:
        slots = self._slots.get(name)
        if slots is None:
            slots = self._slots[name] = {}
        if len(slots) >= limit:  # only a full set of slots is worth sweeping for expired ones
            slots = self._live_slots(name)
            if len(slots) >= limit:
                return None
        token = f"m{next(_memory_tokens):x}"
        slots[token] = time.monotonic() + ttl_seconds
        return token

    async def renew_slot(self, name: str, token: str, ttl_seconds: float) -> bool:
        slots = self._live_slots(name)
        if token not in slots:
            return False
        slots[token] = time.monotonic() + ttl_seconds
        return True

    async def renew_slots(self, slots: list[tuple[str, str]], ttl_seconds: float) -> int:
        return sum([await self.renew_slot(name, token, ttl_seconds) for name, token in slots])

    async def release_slot(self, name: str, token: str) -> None:
        self._slots.get(name, {}).pop(token, None)

    async def slots_in_use(self, name: str) -> int:
        return len(self._live_slots(name))

    async def set_until(self, name: str, until: float, reason: str = "") -> None:
        self._untils[name] = Until(until, reason)

    def _until(self, name: str) -> Until | None:
        value = self._untils.get(name)
        if value is not None and value.until <= time.time():
            del self._untils[name]
            return None
        return value

    async def get_until(self, name: str) -> Until | None:
        return self._until(name)

    async def get_many_until(self, names: list[str]) -> list[Until | None]:
        return [self._until(name) for name in names]

    async def clear(self, name: str) -> None:
        self._untils.pop(name, None)
        self._claims.pop(name, None)
        self._counters.pop(name, None)

    async def claim(self, name: str, ttl_seconds: float) -> bool:
        now = time.monotonic()
        expires = self._claims.get(name)
        if expires is not None and expires > now:
            return False
        self._claims[name] = now + ttl_seconds
        return True

    async def next_index(self, name: str) -> int:
        self._counters[name] = self._counters.get(name, 0) + 1
        return self._counters[name]

    async def close(self) -> None:
        return None


# Lua pieces every script shares: the server's clock in ms; for a slot set (KEYS[1], token ->
# expiry ms), drop expired slots, and keep the set itself until its last slot expires.
_NOW_MS = """
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""
_PRUNE_SLOTS = _NOW_MS + "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms)\n"
_KEEP_UNTIL_LAST_SLOT = """
local latest = tonumber(redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')[2])
redis.call('PEXPIREAT', KEYS[1], latest + 1000)
return 1
"""

# KEYS[1] counter key prefix; ARGV: window_ms, amount, limit (-1 = none), expire_at_ms (-1 =
# the window's end + 1 s). Server clock.
_HIT = (
    _NOW_MS
    + """
local window_ms = tonumber(ARGV[1])
local index = math.floor(now_ms / window_ms)
local key = KEYS[1] .. ':' .. index
local reset_ms = (index + 1) * window_ms
local total = tonumber(redis.call('GET', key) or '0')
local amount = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
if amount == 0 then return {1, total, reset_ms} end
if limit >= 0 and total + amount > limit then return {0, total, reset_ms} end
total = redis.call('INCRBY', key, amount)
local expire_ms = tonumber(ARGV[4])
if expire_ms < 0 then expire_ms = reset_ms + 1000 end
redis.call('PEXPIREAT', key, expire_ms)
return {1, total, reset_ms}
"""
)

# KEYS[1] sorted set token -> expiry ms; ARGV: limit, ttl_ms, token.
_ACQUIRE = (
    _PRUNE_SLOTS
    + """
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
local expires = now_ms + tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], expires, ARGV[3])
"""
    + _KEEP_UNTIL_LAST_SLOT
)

# KEYS[1] sorted set; ARGV: ttl_ms, token.
_RENEW = (
    _PRUNE_SLOTS
    + """
if not redis.call('ZSCORE', KEYS[1], ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], now_ms + tonumber(ARGV[1]), ARGV[2])
"""
    + _KEEP_UNTIL_LAST_SLOT
)

# KEYS[1] sorted set.
_COUNT = (
    _PRUNE_SLOTS
    + """
return redis.call('ZCARD', KEYS[1])
"""
)


class RedisState:
    """Redis back end (redis-py asyncio). One client per event loop, created on first use."""

    PREFIX = "ccsite:"

    def __init__(self, url: str) -> None:
        self._url = url
        self._client: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._scripts: dict[str, Any] = {}

    def _redis(self) -> Any:
        import redis.asyncio as aioredis

        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            # A client's connections belong to the loop that opened them (tests run many loops).
            self._client = aioredis.Redis.from_url(self._url, decode_responses=True)
            self._loop = loop
            self._scripts = {
                "hit": self._client.register_script(_HIT),
                "acquire": self._client.register_script(_ACQUIRE),
                "renew": self._client.register_script(_RENEW),
                "count": self._client.register_script(_COUNT),
            }
        return self._client

    def _key(self, name: str) -> str:
        return self.PREFIX + name

    async def _run(self, script: str, keys: list[str], args: list[Any]) -> Any:
        self._redis()
        return await self._scripts[script](keys=keys, args=args)

    async def hit(
        self,
        name: str,
        window_seconds: float,
        amount: int = 1,
        limit: int | None = None,
        expires_at: float | None = None,
    ) -> WindowCount:
        window_ms = max(1, round(window_seconds * 1000))
        expire_ms = -1 if expires_at is None else max(0, round(expires_at * 1000))
        args = [window_ms, amount, -1 if limit is None else limit, expire_ms]
        allowed, total, reset_ms = await self._run("hit", [self._key(name)], args)
        return WindowCount(bool(allowed), int(total), int(reset_ms) / 1000)

    async def window_total(self, name: str, window_seconds: float) -> WindowCount:
        return await self.hit(name, window_seconds, amount=0)

    async def acquire_slot(self, name: str, limit: int, ttl_seconds: float) -> str | None:
        token = uuid.uuid4().hex
        ttl_ms = max(1, round(ttl_seconds * 1000))
        taken = await self._run("acquire", [self._key(name)], [limit, ttl_ms, token])
        return token if taken else None

    async def renew_slot(self, name: str, token: str, ttl_seconds: float) -> bool:
        ttl_ms = max(1, round(ttl_seconds * 1000))
        return bool(await self._run("renew", [self._key(name)], [ttl_ms, token]))

    async def renew_slots(self, slots: list[tuple[str, str]], ttl_seconds: float) -> int:
        if not slots:
            return 0
        ttl_ms = max(1, round(ttl_seconds * 1000))
        async with self._redis().pipeline(transaction=False) as pipe:
            for name, token in slots:
                await self._scripts["renew"](keys=[self._key(name)], args=[ttl_ms, token], client=pipe)
            renewed = await pipe.execute()
        return sum(1 for taken in renewed if taken)

    async def release_slot(self, name: str, token: str) -> None:
        await self._redis().zrem(self._key(name), token)

    async def slots_in_use(self, name: str) -> int:
        return int(await self._run("count", [self._key(name)], []))

    async def set_until(self, name: str, until: float, reason: str = "") -> None:
        remaining_ms = round((until - time.time()) * 1000)
        if remaining_ms <= 0:
            await self._redis().delete(self._key(name))
            return
        await self._redis().set(self._key(name), f"{until!r}|{reason}", px=remaining_ms)

    @staticmethod
    def _parse_until(raw: str | None) -> Until | None:
        if raw is None:
            return None
        until, _, reason = raw.partition("|")
        value = Until(float(until), reason)
        return value if value.until > time.time() else None

    async def get_until(self, name: str) -> Until | None:
        return self._parse_until(await self._redis().get(self._key(name)))

    async def get_many_until(self, names: list[str]) -> list[Until | None]:
        if not names:
            return []
        raws = await self._redis().mget([self._key(name) for name in names])
        return [self._parse_until(raw) for raw in raws]

    async def clear(self, name: str) -> None:
        await self._redis().delete(self._key(name))

    async def claim(self, name: str, ttl_seconds: float) -> bool:
        ttl_ms = max(1, round(ttl_seconds * 1000))
        return bool(await self._redis().set(self._key(name), "1", nx=True, px=ttl_ms))

    async def next_index(self, name: str) -> int:
        return int(await self._redis().incr(self._key(name)))

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()


class HeldSlots:
    """The concurrency slots this process holds for running requests, renewed in the
    background while held (see the module docstring). ``ttl_seconds`` is read at each round,
    so a changed setting applies to the next one."""

    def __init__(self, ttl_seconds: Callable[[], float]) -> None:
        self._ttl = ttl_seconds
        self._held: dict[str, tuple[SharedState, str]] = {}  # token -> (state, slot name)
        self._task: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return len(self._held)

    def hold(self, state: SharedState, name: str, token: str) -> None:
        """Keep a slot alive until ``drop``; starts the renewing task in this loop if needed."""
        self._held[token] = (state, name)
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done() or self._task.get_loop() is not loop:
            self._task = loop.create_task(self._renew_while_held())

    def drop(self, token: str) -> None:
        self._held.pop(token, None)

    async def _renew_while_held(self) -> None:
        while self._held:
            ttl = self._ttl()
            await asyncio.sleep(ttl / 3)
            await self.renew_all(ttl)

    async def stop(self) -> None:
        """Stop renewing: forget the held slots, cancel the task in this loop (shutdown, tests)."""
        self._held.clear()
        task, self._task = self._task, None
        if task is not None and not task.done() and task.get_loop() is asyncio.get_running_loop():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def renew_all(self, ttl: float) -> None:
        """One round: every held slot's expiry pushed to ``ttl`` from now, one call per state."""
        by_state: dict[int, tuple[SharedState, list[tuple[str, str]]]] = {}
        for token, (state, name) in list(self._held.items()):
            by_state.setdefault(id(state), (state, []))[1].append((name, token))
        for state, slots in by_state.values():
            try:
                await state.renew_slots(slots, ttl)
            except Exception:  # Redis away: the next round tries again, the TTL is the bound
                logger.warning("could not renew %d concurrency slots", len(slots), exc_info=True)


_state: SharedState | None = None


def shared_state() -> SharedState:
    """The process's shared state: Redis when ``settings.REDIS_URL`` is set, memory otherwise."""
    global _state
    if _state is None:
        from django.conf import settings

        url = getattr(settings, "REDIS_URL", "")
        _state = RedisState(url) if url else MemoryState()
    return _state


def reset_shared_state(state: SharedState | None = None) -> None:
    """Replace the process's instance (tests; a changed REDIS_URL)."""
    global _state
    _state = state
