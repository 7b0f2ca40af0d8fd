"""Which client conversation a request belongs to (protocol §3 x-session-id, §5 threadId).

Clients that keep a conversation id send it in different places; the first one found becomes
the request's ``session_hint``, from which the upstream client derives a stable UUIDv5. A
request without one gets a fresh id per request.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Header names as Django exposes them in request.headers (case-insensitive mapping).
SESSION_HEADERS = ("x-claude-code-session-id", "session-id", "x-session-id")
_MAX_HINT = 512


def session_hint(headers: Mapping[str, str], *body_candidates: Any) -> str | None:
    """The first non-empty conversation id among the headers, then the body candidates
    (``prompt_cache_key``, ``user``, ``metadata.user_id``, in the caller's order)."""
    for name in SESSION_HEADERS:
        value = headers.get(name)
        if value and value.strip():
            return value.strip()[:_MAX_HINT]
    for value in body_candidates:
        if isinstance(value, str) and value.strip():
            return value.strip()[:_MAX_HINT]
    return None
