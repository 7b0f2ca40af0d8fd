"""The one upstream connection pool of the process, created lazily on first use.

Only connecting has a timeout here. Waiting for the answer is governed by the stream's own
first-event, idle and total deadlines (proxy/upstream/stream.py), because a reasoning model may
legitimately think for minutes.
"""

from __future__ import annotations

from typing import Any

from ccsite.settings_cache import cached_settings
from proxy.upstream.http1 import ConnectionPool
from proxy.upstream.outbound import proxy_for

_pool: ConnectionPool | None = None


def upstream_pool() -> ConnectionPool:
    global _pool
    if _pool is None or _pool.closed:
        factory: Any = ConnectionPool
        if cached_settings.CC_UPSTREAM_CLIENT == "aiohttp":  # measured in make bench; see http1.py
            from proxy.upstream.aiohttp_pool import AiohttpPool

            factory = AiohttpPool
        _pool = factory(
            cached_settings.CC_UPSTREAM_BASE_URL,
            connect_timeout=cached_settings.CC_CONNECT_TIMEOUT,
            max_connections=cached_settings.CC_MAX_CONNECTIONS,
            max_idle=cached_settings.CC_MAX_KEEPALIVE_CONNECTIONS,
            proxy=proxy_for(cached_settings.CC_UPSTREAM_BASE_URL),
        )
    return _pool


async def close_upstream_client() -> None:
    """Called on server shutdown (ASGI lifespan) and by tests that change the upstream."""
    global _pool
    pool, _pool = _pool, None
    if pool is not None:
        await pool.aclose()
