"""Client API keys: generation, digest and constant-time verification (no Django models here).

A key looks like ``ccs_<12 lookup chars><32 secret chars>``. The first 16 characters are the
lookup prefix stored in clear (unique, indexed, safe to show); the whole key is stored only as
HMAC-SHA256 keyed with CLIENT_KEY_PEPPER, so a leaked database reveals no usable key, and
rotating SECRET_KEY does not revoke every key.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
from functools import lru_cache

KEY_MARKER = "ccs_"
_ALPHABET = string.ascii_letters + string.digits
_LOOKUP_CHARS = 12
_SECRET_CHARS = 32
PREFIX_LENGTH = len(KEY_MARKER) + _LOOKUP_CHARS
KEY_LENGTH = PREFIX_LENGTH + _SECRET_CHARS


def generate_key() -> str:
    body = "".join(secrets.choice(_ALPHABET) for _ in range(_LOOKUP_CHARS + _SECRET_CHARS))
    return KEY_MARKER + body


def key_prefix(key: str) -> str | None:
    """The lookup prefix of a well-formed key, or None for anything that cannot be ours."""
    if len(key) != KEY_LENGTH or not key.startswith(KEY_MARKER):
        return None
    if not all(ch in _ALPHABET for ch in key[len(KEY_MARKER) :]):
        return None
    return key[:PREFIX_LENGTH]


@lru_cache(maxsize=4)
def _keyed_with(pepper: str) -> hmac.HMAC:
    """HMAC-SHA256 keyed with ``pepper`` and fed nothing yet. Each digest starts from a copy:
    keying a new HMAC looks the algorithm up in OpenSSL again, which on a key check per
    request cost several times the hashing itself."""
    return hmac.new(pepper.encode(), digestmod=hashlib.sha256)


def key_digest(key: str, pepper: str) -> str:
    """HMAC-SHA256 of ``key`` keyed with ``pepper``, as 64 hex digits."""
    keyed = _keyed_with(pepper).copy()
    keyed.update(key.encode())
    return keyed.hexdigest()


def key_matches(key: str, digest: str, pepper: str) -> bool:
    # Constant time, so response timing reveals nothing about how much of a digest matched.
    return hmac.compare_digest(key_digest(key, pepper), digest)
