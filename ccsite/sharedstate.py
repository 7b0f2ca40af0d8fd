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

``hit(name, window_seconds, amount=1, limit=None) -> WindowCount``
    Add ``amount`` to the counter of the current fixed window (windows are aligned to
    multiples of ``window_seconds`` since the epoch). With ``limit``, the add happens only if
    the total stays ``<= limit``; ``WindowCount.allowed`` says whether it did. Returns the
    window's total after the call and ``reset_at`` (epoch seconds the window ends).
``window_total(name, window_seconds) -> WindowCount``
    The current window's total without changing it (``allowed`` is always True).
``acquire_slot(name, limit, ttl_seconds) -> str | None``
    Take one of ``limit`` concurrency slots; returns a token, or None when all are held.
    A slot expires ``ttl_seconds`` after it was taken or last renewed, so a process that
    crashes while holding one never leaks it for longer than that.
``renew_slot(name, token, ttl_seconds) -> bool``
    Push a held slot's expiry to ``ttl_seconds`` from now (False if it had expired already).
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
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

__all__ = [
    "MemoryState",
    "RedisState",
    "SharedState",
    "Until",
    "WindowCount",
    "is_immediate",
    "run_now",
    "shared_state",
]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class WindowCount:
    allowed: bool
    total: int
    reset_at: float  # epoch seconds when the current window ends


@dataclass(frozen=True, slots=True)
class Until:
    until: float  # epoch seconds
    reason: str


class SharedState(Protocol):
    async def hit(
        self, name: str, window_seconds: float, amount: int = 1, limit: int | None = None
    ) -> WindowCount: ...
    async def window_total(self, name: str, window_seconds: float) -> WindowCount: ...
    async def acquire_slot(self, name: str, limit: int, ttl_seconds: float) -> str | None: ...
    async def renew_slot(self, name: str, token: str, ttl_seconds: float) -> bool: ...
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


class MemoryState:
    """Process-memory back end. No method awaits: each call runs to completion atomically."""

    immediate = True  # callers may finish its calls synchronously with run_now

    def __init__(self) -> None:
        self._windows: dict[str, tuple[int, int]] = {}  # name -> (window index, total)
        self._slots: dict[str, dict[str, float]] = {}  # name -> token -> expires (monotonic)
        self._untils: dict[str, Until] = {}
        self._claims: dict[str, float] = {}  # name -> expires (monotonic)
        self._counters: dict[str, int] = {}

    async def hit(
        self, name: str, window_seconds: float, amount: int = 1, limit: int | None = None
    ) -> WindowCount:
        index, reset_at = _window_bounds(time.time(), window_seconds)
        stored = self._windows.get(name)
        total = stored[1] if stored and stored[0] == index else 0
        if limit is not None and total + amount > limit:
            return WindowCount(False, total, reset_at)
        self._windows[name] = (index, total + amount)
        return WindowCount(True, total + amount, reset_at)

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
        token = uuid.uuid4().hex
        slots[token] = time.monotonic() + ttl_seconds
        return token

    async def renew_slot(self, name: str, token: str, ttl_seconds: float) -> bool:
        slots = self._live_slots(name)
        if token not in slots:
            return False
        slots[token] = time.monotonic() + ttl_seconds
        return True

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


# KEYS[1] counter key prefix; ARGV: window_ms, amount, limit (-1 = none). Server clock.
_HIT = """
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
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
redis.call('PEXPIREAT', key, reset_ms + 1000)
return {1, total, reset_ms}
"""

# KEYS[1] sorted set token -> expiry ms; ARGV: limit, ttl_ms, token.
_ACQUIRE = """
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
local expires = now_ms + tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], expires, ARGV[3])
local latest = tonumber(redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')[2])
redis.call('PEXPIREAT', KEYS[1], latest + 1000)
return 1
"""

# KEYS[1] sorted set; ARGV: ttl_ms, token.
_RENEW = """
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms)
if not redis.call('ZSCORE', KEYS[1], ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], now_ms + tonumber(ARGV[1]), ARGV[2])
local latest = tonumber(redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')[2])
redis.call('PEXPIREAT', KEYS[1], latest + 1000)
return 1
"""

# KEYS[1] sorted set.
_COUNT = """
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms)
return redis.call('ZCARD', KEYS[1])
"""


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
        self, name: str, window_seconds: float, amount: int = 1, limit: int | None = None
    ) -> WindowCount:
        window_ms = max(1, round(window_seconds * 1000))
        args = [window_ms, amount, -1 if limit is None else limit]
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
