"""Signatures for the thinking blocks this gateway returns on the Anthropic surface.

Anthropic clients keep a ``signature`` beside each ``thinking`` block and send it back with the
conversation. The gateway signs the reasoning text it streamed with an HMAC-SHA256 under its
own key, so that a block sent back can be told apart from one this gateway never produced.
The format is recognizably ours (``ccsite1.<base64url>``): it never poses as an Anthropic
signature, and a real Anthropic signature simply fails to verify here.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

PREFIX = "ccsite1."
# Domain separation: the same key may sign other things one day; a thinking signature must
# never verify as anything else, nor the reverse.
_CONTEXT = b"ccsite thinking v1\x00"
_DIGEST_CHARS = 43  # base64url of 32 bytes, without padding


def _mac(text: str, key: bytes) -> bytes:
    return hmac.new(key, _CONTEXT + text.encode("utf-8", "surrogatepass"), hashlib.sha256).digest()


def sign(text: str, key: bytes) -> str:
    """The signature of one thinking block's full text."""
    return PREFIX + base64.urlsafe_b64encode(_mac(text, key)).rstrip(b"=").decode("ascii")


def verify(text: str, signature: str, key: bytes) -> bool:
    """True only for a signature this gateway made over exactly ``text`` (constant-time)."""
    if not isinstance(signature, str) or not signature.startswith(PREFIX):
        return False
    encoded = signature[len(PREFIX) :]
    if len(encoded) != _DIGEST_CHARS:
        return False
    try:
        given = base64.urlsafe_b64decode(encoded + "=")
    except ValueError:
        return False
    return hmac.compare_digest(given, _mac(text, key))
