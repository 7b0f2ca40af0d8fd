"""The live request view's feed: rows announced to a channels group as they are written.

The writer thread hands each written batch to the event loop that served the requests, which
sends one group message per batch; ``LiveRequestsConsumer`` (usage/consumers.py) forwards it
to staff browsers. With REDIS_URL the group spans processes (channels-redis), otherwise it is
this process's memory.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from channels.layers import get_channel_layer

if TYPE_CHECKING:
    from usage.models import RequestLog

GROUP = "usage.live"
MESSAGE_TYPE = "usage.rows"


def row_summary(row: RequestLog, usernames: dict[int, str] | None = None) -> dict[str, Any]:
    """What the live view shows of a request (no secret: names and numbers only)."""
    return {
        "request_id": row.request_id,
        "time": row.created_at.isoformat(timespec="milliseconds"),
        "user": (usernames or {}).get(row.user_id or 0, str(row.user_id or "")),
        "surface": row.surface,
        "model": row.model or row.client_model,
        "outcome": row.outcome,
        "http_status": row.http_status,
        "input_tokens": row.input_tokens,
        "output_tokens": row.output_tokens,
        "tokens_estimated": row.tokens_estimated,
        "first_token_ms": None if row.first_token_ms is None else round(row.first_token_ms, 1),
        "duration_ms": round(row.duration_ms, 1),
    }


def _usernames(rows: list[RequestLog]) -> dict[int, str]:
    from accounts.models import User

    ids = {row.user_id for row in rows if row.user_id}
    return dict(User.objects.filter(pk__in=ids).values_list("pk", "username")) if ids else {}


def announce(loop: asyncio.AbstractEventLoop, rows: list[RequestLog]) -> None:
    """From the writer thread: send the batch's summaries to the live group on ``loop``."""
    layer = get_channel_layer()
    if layer is None:
        return
    names = _usernames(rows)
    message = {"type": MESSAGE_TYPE, "rows": [row_summary(row, names) for row in rows]}
    asyncio.run_coroutine_threadsafe(layer.group_send(GROUP, message), loop)
