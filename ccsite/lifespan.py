"""ASGI lifespan: release process-wide resources on shutdown (servers that send lifespan
events, e.g. uvicorn; Daphne closes its sockets when the process exits)."""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async

from proxy import credential_writer, routing
from proxy.upstream.client import close_upstream_client


async def lifespan_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await routing.settle()
            await credential_writer.flush()
            await close_upstream_client()
            from usage.recorder import writer

            await sync_to_async(writer.shutdown, thread_sensitive=False)()
            await send({"type": "lifespan.shutdown.complete"})
            return
