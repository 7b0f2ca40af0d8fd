"""Calling the gateway's ASGI application in process, one raw request at a time, for tests
that need what an HTTP client cannot send (a body in chosen ASGI messages, a root_path)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence


async def call_asgi(
    method: str,
    path: str,
    *,
    headers: Sequence[tuple[bytes, bytes]] = (),
    body_parts: Sequence[bytes] = (b"",),
    root_path: str = "",
) -> tuple[int, dict[bytes, bytes], bytes]:
    """(status, lowercased response headers, body) of ``method path``; the body is delivered as
    one ``http.request`` message per part, and the client never disconnects."""
    from ccsite.asgi import application

    messages = [
        {"type": "http.request", "body": part, "more_body": index < len(body_parts) - 1}
        for index, part in enumerate(body_parts)
    ]
    sent: list[dict] = []

    async def receive() -> dict:
        if messages:
            return messages.pop(0)
        await asyncio.sleep(3600)  # no disconnect: the response ends the call
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = http_scope(method, path, headers=headers, root_path=root_path)
    await asyncio.wait_for(application(scope, receive, send), timeout=30)
    response_headers = {name.lower(): value for name, value in sent[0]["headers"]}
    return sent[0]["status"], response_headers, b"".join(message.get("body", b"") for message in sent[1:])


def http_scope(
    method: str, path: str, *, headers: Sequence[tuple[bytes, bytes]] = (), root_path: str = ""
) -> dict:
    """The ASGI scope of an HTTP/1.1 request from a loopback client, as Daphne gives it."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": root_path,
        "headers": [(b"host", b"testserver"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
