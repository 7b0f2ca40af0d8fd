"""Sealed reasoning for the Responses surface: ``encrypted_content`` the gateway can read back.

Responses clients that keep no server state (Codex sends ``store: false``) ask for
``include: ["reasoning.encrypted_content"]`` and send each reasoning item back on the next turn.
The gateway seals the reasoning text with AES-256-GCM under a key derived from its own secrets,
so the text is neither readable nor forgeable by the client, and opens it again on input. The
format is recognizably ours (``ccsite1.<base64url(nonce + ciphertext)>``); encrypted content from
another provider simply fails to open and is dropped by the caller.
"""

from __future__ import annotations

import base64
import binascii
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PREFIX = "ccsite1."
# Bound into every seal as associated data: a sealed reasoning text never opens as anything else.
_CONTEXT = b"ccsite responses reasoning v1"
_NONCE_BYTES = 12


def seal(text: str, key: bytes) -> str:
    """``text`` encrypted and authenticated under ``key`` (32 bytes), as an opaque string."""
    nonce = os.urandom(_NONCE_BYTES)
    sealed = AESGCM(key).encrypt(nonce, text.encode("utf-8", "surrogatepass"), _CONTEXT)
    return PREFIX + base64.urlsafe_b64encode(nonce + sealed).rstrip(b"=").decode("ascii")


def open_sealed(token: object, key: bytes) -> str | None:
    """The text inside a seal this gateway made under ``key``; None for anything else."""
    if not isinstance(token, str) or not token.startswith(PREFIX):
        return None
    encoded = token[len(PREFIX) :]
    try:
        raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    except (ValueError, binascii.Error):
        return None
    if len(raw) <= _NONCE_BYTES:
        return None
    try:
        plain = AESGCM(key).decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], _CONTEXT)
    except InvalidTag:
        return None
    return plain.decode("utf-8", "surrogatepass")
