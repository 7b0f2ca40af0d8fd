"""Redaction of bodies kept for debugging: no key, Authorization value or token-like string.

Applied to request and response bodies before they are stored (CCSITE_REQUEST_LOG_BODIES).
Values of JSON fields whose name says secret are replaced; anywhere else, bearer values, our
client keys (``ccs_...``), Command Code keys (``user_...``), ``sk-...`` style keys and any long
unbroken run of key-like characters are replaced by ``[redacted]``.
"""

from __future__ import annotations

import re

REDACTED = "[redacted]"

_SECRET_FIELD = re.compile(
    r'("(?:[A-Za-z_-]*(?:api[_-]?key|authorization|secret|password|token|credential)[A-Za-z_-]*)"\s*:\s*)"(?:[^"\\]|\\.)*"',
    re.IGNORECASE,
)
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+")
_KNOWN_KEYS = re.compile(r"\b(?:ccs_|user_|sk-|sk_|ghp_|xox[bp]-)[A-Za-z0-9_-]{8,}")
# 32+ characters of letters and digits with at least one digit: secrets, not words.
_TOKEN_LIKE = re.compile(r"\b(?=[A-Za-z0-9_-]*\d)[A-Za-z0-9_-]{32,}\b")


def redact(text: str) -> str:
    text = _SECRET_FIELD.sub(lambda match: f'{match.group(1)}"{REDACTED}"', text)
    text = _BEARER.sub(lambda match: f"{match.group(1)} {REDACTED}", text)
    text = _KNOWN_KEYS.sub(REDACTED, text)
    return _TOKEN_LIKE.sub(REDACTED, text)


def capped(raw: bytes, limit: int) -> str:
    """The first ``limit`` bytes as text, redacted, with a marker when cut."""
    # Redact a little past the cap, then cut: a key straddling the cut is still recognised.
    text = redact(raw[: limit + 256].decode("utf-8", errors="replace"))[:limit]
    suffix = f"\n[... {len(raw) - limit} more bytes not kept]" if len(raw) > limit else ""
    return text + suffix
