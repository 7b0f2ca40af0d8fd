"""ASGI lifespan: run the shutdown hooks (ccsite.shutdown) for servers that send lifespan
events, e.g. uvicorn; under Daphne the graceful SIGTERM handler runs them."""

from __future__ import annotations

from typing import Any

from ccsite.dbthreads import off_loop
from ccsite.shutdown import on_shutdown, run_shutdown_hooks
from proxy import credential_writer, limits, metrics, routing
from proxy.upstream.client import close_upstream_client


async def _flush_request_log() -> None:
    from usage.recorder import writer  # imported late: the usage app loads models

    # The writer's final flush is a blocking database write: off the event loop.
    await off_loop(writer.shutdown)()


def _close_database_pools() -> None:
    """End this process's PostgreSQL sessions cleanly (the pool closes its connections) rather
    than leave the server to find each one's socket gone when the process exits."""
    from django.db import connections

    for connection in connections.all():
        if callable(getattr(connection, "close_pool", None)):
            connection.close_pool()


# In this order: limit settlements, routing state and credential facts are settled while the
# upstream client is still open, and the request log is flushed last, after the outcomes of cancelled requests
# (ccsite.shutdown cancels and unwinds requests still open before any hook runs). Then this
# process's live gauges leave the shared metrics folder, and its database pools are closed.
on_shutdown(limits.settle)
on_shutdown(routing.settle)
on_shutdown(credential_writer.flush)
on_shutdown(close_upstream_client)
on_shutdown(_flush_request_log)
on_shutdown(metrics.forget_this_process)
on_shutdown(off_loop(_close_database_pools))  # last: the hooks above may still write


async def lifespan_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await run_shutdown_hooks()
            await send({"type": "lifespan.shutdown.complete"})
            return
