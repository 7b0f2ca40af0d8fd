"""Opt-in body logging (CCSITE_REQUEST_LOG_BODIES): the request and the response as the client
saw them, each cut at CCSITE_REQUEST_LOG_BODY_MAX_BYTES and redacted (usage/redaction.py),
queued to the request-log writer under the request id. Off by default: nothing here runs then.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.http.response import HttpResponseBase

from proxy.request_meta import request_id_of
from usage.recorder import writer
from usage.redaction import capped


def capture(request: HttpRequest, response: HttpResponseBase) -> None:
    limit = settings.CCSITE_REQUEST_LOG_BODY_MAX_BYTES
    request_id = request_id_of(request)
    try:
        request_text = capped(request.body, limit)
    except Exception:  # e.g. a body too large to read: nothing to keep
        request_text = ""
    if getattr(response, "streaming", False):
        response.streaming_content = _tee(response.streaming_content, request_id, request_text, limit)  # type: ignore[attr-defined]
    else:
        writer.record_body(request_id, request_text, capped(response.content, limit))  # type: ignore[attr-defined]


async def _tee(content: Any, request_id: str, request_text: str, limit: int) -> AsyncIterator[bytes]:
    kept = bytearray()
    try:
        async for chunk in content:
            if len(kept) <= limit:  # a little past the cap, so a key across the cut is still seen
                kept += chunk[: limit + 256 - len(kept)]
            yield chunk
    finally:
        writer.record_body(request_id, request_text, capped(bytes(kept), limit))
