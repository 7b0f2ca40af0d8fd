"""Server-sent-event framing shared by every surface (pure bytes, no I/O)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from proxy.translate.jsonfast import dumps

DONE = b"data: [DONE]\n\n"


def data_frame(payload: Mapping[str, Any]) -> bytes:
    """``data: {...}`` (OpenAI Chat Completions style: no event line)."""
    return b"data: " + dumps(payload) + b"\n\n"


def event_frame(event: str, payload: Mapping[str, Any]) -> bytes:
    """``event: name`` + ``data: {...}`` (Anthropic and Responses style)."""
    return b"event: " + event.encode() + b"\ndata: " + dumps(payload) + b"\n\n"


def comment_frame(text: str) -> bytes:
    """A comment line: clients ignore it; proxies see traffic (keep-alive, header flush)."""
    return b": " + text.encode() + b"\n\n"
