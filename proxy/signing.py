"""Keys the gateway derives from SECRET_KEY for its own signatures (never a client's key)."""

from __future__ import annotations

import functools
import hashlib
import hmac

from django.conf import settings


@functools.cache
def thinking_key() -> bytes:
    """Signs the thinking blocks the gateway emits, so clients can send them back (Anthropic)."""
    return hmac.new(settings.SECRET_KEY.encode(), b"ccsite thinking signatures v1", hashlib.sha256).digest()


@functools.cache
def reasoning_key() -> bytes:
    """Seals the reasoning items the Responses surface returns as ``encrypted_content`` (AES-256)."""
    return hmac.new(
        settings.SECRET_KEY.encode(), b"ccsite responses reasoning encryption v1", hashlib.sha256
    ).digest()
