"""ASGI lifespan: run the shutdown hooks (ccsite.shutdown) for servers that send lifespan
events, e.g. uvicorn; under Daphne the graceful SIGTERM handler runs them."""

from __future__ import annotations

from typing import Any

from ccsite.shutdown import on_shutdown, run_shutdown_hooks
from proxy.upstream.client import close_upstream_client

on_shutdown(close_upstream_client)


async def lifespan_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await run_shutdown_hooks()
            await send({"type": "lifespan.shutdown.complete"})
            return
