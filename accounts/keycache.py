"""A short-lived, per-process cache of client-key lookups, so steady-state auth costs no query.

Entries live CCSITE_KEY_CACHE_SECONDS. Revoking a key drops its entry at once in the revoking
process; every other process sees the revocation when its entry expires. Unknown prefixes are
cached too, so a client hammering with a bad key does not hammer the database.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

from accounts.limits import KeyLimits


@dataclass(frozen=True, slots=True)
class KeyPrincipal:
    """Who a request belongs to: what the /v1 views see as ``request.auth``."""

    key_id: int
    key_name: str
    user_id: int
    username: str
    # None when neither the key nor its user sets a limit (the common, free case).
    limits: KeyLimits | None = None
    key_prefix: str = ""


@dataclass(frozen=True, slots=True)
class CachedKey:
    digest: str
    principal: KeyPrincipal
    expires_at: datetime | None
    usable: bool  # not revoked and the user is active


class KeyCache:
    max_entries = 10_000

    def __init__(self) -> None:
        self._entries: dict[str, tuple[float, CachedKey | None]] = {}

    def get(self, prefix: str, ttl: float) -> tuple[bool, CachedKey | None]:
        """(hit, entry); an entry of None on a hit means "no such key"."""
        found = self._entries.get(prefix)
        if found is None or time.monotonic() - found[0] > ttl:
            return False, None
        return True, found[1]

    def put(self, prefix: str, entry: CachedKey | None) -> None:
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        self._entries[prefix] = (time.monotonic(), entry)

    def forget(self, prefix: str) -> None:
        self._entries.pop(prefix, None)

    def clear(self) -> None:
        self._entries.clear()


key_cache = KeyCache()
