"""The CLI version the gateway claims in ``x-command-code-version`` (protocol §3).

A pinned version by default (CC_CLI_VERSION). With CC_CLI_VERSION_AUTO the gateway follows
the npm registry's latest ``command-code`` release, checked at most once a day in the
background; any failure keeps the version it had.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time

import httpx

from ccsite.settings_cache import cached_settings

logger = logging.getLogger(__name__)

REFRESH_SECONDS = 24 * 3600
_VERSION = re.compile(r"^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?$")


class _VersionCache:
    def __init__(self) -> None:
        self.latest: str | None = None
        self.checked_at = float("-inf")
        self.task: asyncio.Task[None] | None = None


_cache = _VersionCache()


def registry_client() -> httpx.AsyncClient:
    """A short-lived client for the once-a-day registry check (tests replace it); through the
    one outbound proxy rule (proxy/upstream/outbound.py)."""
    from proxy.upstream.outbound import outbound_client_options

    return httpx.AsyncClient(**outbound_client_options(cached_settings.CC_NPM_REGISTRY_URL, timeout=10.0))


def cli_version() -> str:
    if cached_settings.CC_CLI_VERSION_AUTO and _cache.latest:
        return _cache.latest
    return cached_settings.CC_CLI_VERSION


def refresh_in_background() -> None:
    """Start a registry check if one is due; never blocks or fails the caller."""
    if not cached_settings.CC_CLI_VERSION_AUTO or time.monotonic() - _cache.checked_at < REFRESH_SECONDS:
        return
    if _cache.task is not None and not _cache.task.done():
        return
    _cache.checked_at = time.monotonic()
    _cache.task = asyncio.get_running_loop().create_task(refresh_latest_version())


async def refresh_latest_version() -> None:
    url = f"{cached_settings.CC_NPM_REGISTRY_URL}/command-code/latest"
    try:
        async with registry_client() as client:
            response = await client.get(url)
        version = response.json().get("version") if response.status_code == 200 else None
    except Exception as exc:  # any failure keeps the current version
        logger.info("could not check the latest command-code version: %s", type(exc).__name__)
        return
    if isinstance(version, str) and _VERSION.match(version):
        _cache.latest = version
    else:
        logger.info("the npm registry gave no usable command-code version")


def reset_version_cache() -> None:
    """For tests."""
    global _cache
    _cache = _VersionCache()
