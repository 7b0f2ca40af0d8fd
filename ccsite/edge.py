"""Tiny ASGI wrappers that run before Django for requests that need none of it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from ccsite.paths import is_api_path

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_HEAD_HEADERS = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", b"0")]


def answer_head_probes(app: ASGIApp, *, api: ASGIApp | None = None) -> ASGIApp:
    """Answer every HEAD request at once with an empty 200; send API paths to ``api`` (when
    given) and everything else to ``app``.

    Clients probe reachability with HEAD (Claude Code sends ``HEAD /api/hello`` at start-up);
    answering at the edge keeps those probes fast and free of auth, database and middleware.
    ``app`` is Django wrapped in the static-files handler (admin assets); API requests, which
    never ask for a static file, go straight to Django without that layer.
    """
    api_app = api or app

    async def wrapper(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] == "HEAD":
            await send({"type": "http.response.start", "status": 200, "headers": _HEAD_HEADERS})
            await send({"type": "http.response.body", "body": b""})
        elif is_api_path(scope["path"]):
            await api_app(scope, receive, send)
        else:
            await app(scope, receive, send)

    return wrapper
