"""ASGI lifespan: run the shutdown hooks (ccsite.shutdown) for servers that send lifespan
events, e.g. uvicorn; under Daphne the graceful SIGTERM handler runs them."""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async

from ccsite.shutdown import on_shutdown, run_shutdown_hooks
from proxy import credential_writer, limits, routing
from proxy.upstream.client import close_upstream_client


async def _flush_request_log() -> None:
    from usage.recorder import writer  # imported late: the usage app loads models

    # The writer's final flush is a blocking database write: off the event loop.
    await sync_to_async(writer.shutdown, thread_sensitive=False)()


# In this order: limits and routing state and credential facts are settled while the upstream
# client is still open, and the request log is flushed last, after the outcomes of cancelled
# requests.
on_shutdown(limits.settle)
on_shutdown(routing.settle)
on_shutdown(credential_writer.flush)
on_shutdown(close_upstream_client)
on_shutdown(_flush_request_log)


async def lifespan_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await run_shutdown_hooks()
            await send({"type": "lifespan.shutdown.complete"})
            return
