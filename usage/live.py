"""The live request view's feed: rows announced to a channels group as they are written.

The writer thread hands each written batch to the event loop that served the requests, which
sends one group message per batch; ``LiveRequestsConsumer`` (usage/consumers.py) forwards it
to staff browsers. With REDIS_URL the group spans processes (channels-redis), otherwise it is
this process's memory.
"""

from __future__ import annotations

import asyncio
from typing import Any

from channels.layers import get_channel_layer

GROUP = "usage.live"
MESSAGE_TYPE = "usage.rows"


def row_summary(row: dict[str, Any], usernames: dict[int, str] | None = None) -> dict[str, Any]:
    """What the live view shows of a request log row (no secret: names and numbers only)."""
    first_token_ms = row["first_token_ms"]
    return {
        "request_id": row["request_id"],
        "time": row["created_at"].isoformat(timespec="milliseconds"),
        "user": (usernames or {}).get(row["user_id"] or 0, str(row["user_id"] or "")),
        "surface": row["surface"],
        "model": row["model"] or row["client_model"],
        "outcome": row["outcome"],
        "http_status": row["http_status"],
        "input_tokens": row["input_tokens"],
        "output_tokens": row["output_tokens"],
        "tokens_estimated": row["tokens_estimated"],
        "first_token_ms": None if first_token_ms is None else round(first_token_ms, 1),
        "duration_ms": round(row["duration_ms"], 1),
    }


def _usernames(rows: list[dict[str, Any]]) -> dict[int, str]:
    from accounts.models import User

    ids = {row["user_id"] for row in rows if row["user_id"]}
    return dict(User.objects.filter(pk__in=ids).values_list("pk", "username")) if ids else {}


def announce(loop: asyncio.AbstractEventLoop, rows: list[dict[str, Any]]) -> None:
    """From the writer thread: send the batch's summaries to the live group on ``loop``."""
    layer = get_channel_layer()
    if layer is None or not _has_listeners(layer):
        return
    names = _usernames(rows)
    message = {"type": MESSAGE_TYPE, "rows": [row_summary(row, names) for row in rows]}
    asyncio.run_coroutine_threadsafe(layer.group_send(GROUP, message), loop)


def _has_listeners(layer: Any) -> bool:
    """In memory, whether anyone watches (skips the work when nobody does); across processes
    (Redis) another process may hold the socket, so always send."""
    groups = getattr(layer, "groups", None)
    return groups is None or bool(groups.get(GROUP))
