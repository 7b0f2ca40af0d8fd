"""Reads for accounts, including the hot-path client-key lookup."""

from __future__ import annotations

import asyncio

from django.utils import timezone

from accounts import keys
from accounts.keycache import CachedKey, KeyPrincipal, key_cache
from accounts.limits import key_limits
from accounts.models import ClientKey, UpstreamCredential
from ccsite.settings_cache import cached_settings


async def _load_key(prefix: str) -> CachedKey | None:
    row = await ClientKey.objects.select_related("user").filter(prefix=prefix).afirst()
    if row is None:
        return None
    principal = KeyPrincipal(
        key_id=row.pk,
        key_name=row.name,
        user_id=row.user_id,
        username=row.user.get_username(),
        limits=key_limits(row, row.user),
        key_prefix=row.prefix,
    )
    return CachedKey(
        digest=row.digest,
        principal=principal,
        expires_at=row.expires_at,
        usable=not row.revoked and row.user.is_active,
    )


# Lookups under way, by prefix: when an entry expires under load, the requests that find it
# expired wait for one query instead of each sending its own (each one a thread hop).
_loading: dict[str, asyncio.Task[CachedKey | None]] = {}


async def _load_and_cache(prefix: str) -> CachedKey | None:
    try:
        entry = await _load_key(prefix)
        key_cache.put(prefix, entry)
        return entry
    finally:
        _loading.pop(prefix, None)


async def _load_once(prefix: str) -> CachedKey | None:
    task = _loading.get(prefix)
    if task is None or task.get_loop() is not asyncio.get_running_loop():
        task = asyncio.get_running_loop().create_task(_load_and_cache(prefix))
        _loading[prefix] = task
    # Shielded: a client that goes away does not cancel the lookup the others wait for.
    return await asyncio.shield(task)


async def client_key_get_by_secret(secret: str) -> KeyPrincipal | None:
    """The principal for a presented key, or None if it is unknown, wrong, revoked or expired."""
    prefix = keys.key_prefix(secret)
    if prefix is None:
        return None
    hit, entry = key_cache.get(prefix, cached_settings.CCSITE_KEY_CACHE_SECONDS)
    if not hit:
        entry = await _load_once(prefix)
    if entry is None or not entry.usable:
        return None
    if entry.expires_at is not None and entry.expires_at <= timezone.now():
        return None
    if not keys.key_matches(secret, entry.digest, cached_settings.CLIENT_KEY_PEPPER):
        return None
    return entry.principal


def credentials_enabled() -> list[UpstreamCredential]:
    return list(UpstreamCredential.objects.filter(enabled=True).order_by("label"))
