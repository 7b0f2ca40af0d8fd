"""The one ``httpx.AsyncClient`` of the process, created lazily on first use.

Timeouts here cover connecting and writing only. Waiting for the answer is governed by the
stream's own first-event, idle and total deadlines (proxy/upstream/stream.py), because a
reasoning model may legitimately think for minutes.
"""

from __future__ import annotations

import httpx
from django.conf import settings

_client: httpx.AsyncClient | None = None


def _build() -> httpx.AsyncClient:
    connect = settings.CC_CONNECT_TIMEOUT
    return httpx.AsyncClient(
        base_url=settings.CC_UPSTREAM_BASE_URL,
        timeout=httpx.Timeout(connect=connect, read=None, write=connect, pool=connect),
        limits=httpx.Limits(
            max_connections=settings.CC_MAX_CONNECTIONS,
            max_keepalive_connections=settings.CC_MAX_KEEPALIVE_CONNECTIONS,
            keepalive_expiry=30.0,
        ),
        # As the CLI's fetch sends them (§3); httpx's own User-Agent is replaced per request.
        headers={"accept": "*/*", "accept-encoding": "gzip, deflate"},
        follow_redirects=False,
        trust_env=settings.CC_TRUST_ENV_PROXY,
    )


def upstream_client() -> httpx.AsyncClient:
    global _client
    if _client is None or _client.is_closed:
        _client = _build()
    return _client


async def close_upstream_client() -> None:
    """Called on server shutdown (ASGI lifespan) and by tests that change the upstream."""
    global _client
    client, _client = _client, None
    if client is not None:
        await client.aclose()
