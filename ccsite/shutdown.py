"""Graceful shutdown of a gateway process, and the hooks that run before it exits.

On SIGTERM a Daphne process (1) stops accepting connections, (2) lets the HTTP requests it is
serving, streams included, finish for up to ``CCSITE_SHUTDOWN_GRACE_SECONDS`` and waits (up to
``IDLE_CONNECTION_SECONDS``) for its peers to close their idle keep-alive connections, (3) runs the
callbacks registered with :func:`on_shutdown` (log-queue flushes, closing the upstream client),
then (4) stops the reactor and exits. Requests still open when the grace period ends are
cancelled before the hooks run (and given ``CANCEL_SECONDS`` to unwind), so their outcomes are
recorded as cancelled, their concurrency slots given back, and the log flush writes their rows.
A second SIGTERM skips the wait. While draining, responses carry ``Connection: close`` so a
reverse proxy stops reusing this process's keep-alive connections and sends new requests to the
others.

Daphne itself stops at once on SIGTERM (Twisted's handler), cancelling open streams; the
handler installed here replaces it once the reactor runs. Servers that speak the ASGI lifespan
protocol (uvicorn) run the same hooks from ``ccsite.lifespan``.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

logger = logging.getLogger(__name__)

ShutdownHook = Callable[[], Awaitable[None] | None]
_hooks: list[ShutdownHook] = []


def on_shutdown(callback: ShutdownHook) -> ShutdownHook:
    """Run ``callback`` (sync, or async returning an awaitable) once before the process exits.

    Hooks run in registration order on the server's event loop after open requests finished
    (or the grace period ran out); a hook that raises is logged and the others still run. Sync
    hooks must be quick (a bounded flush), they block the loop. Usable as a decorator.
    """
    _hooks.append(callback)
    return callback


async def run_shutdown_hooks() -> None:
    """Run every registered hook once, in order; later calls run nothing (idempotent)."""
    hooks = list(_hooks)
    _hooks.clear()
    for hook in hooks:
        try:
            result = hook()
            if inspect.isawaitable(result):
                await result
        except Exception:
            logger.exception("shutdown hook %r failed", hook)


class InFlight:
    """How many HTTP requests this process is serving now (a stream counts until its end)."""

    def __init__(self) -> None:
        self.count = 0
        self.draining = False
        self._idle = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()

    def cancel_all(self) -> int:
        """Cancel every open request (the grace period is over); how many were cancelled."""
        tasks = [task for task in self._tasks if not task.done()]
        for task in tasks:
            task.cancel()
        return len(tasks)

    async def wait_idle(self, seconds: float) -> bool:
        """True when no request is open, False if ``seconds`` passed first."""
        deadline = time.monotonic() + seconds
        while self.count > 0:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._idle.clear()
            try:
                await asyncio.wait_for(self._idle.wait(), min(remaining, 0.5))
            except TimeoutError:
                pass
        return True

    def _finished(self) -> None:
        self.count -= 1
        if self.count == 0:
            self._idle.set()


in_flight = InFlight()
_CLOSE = (b"connection", b"close")


def count_in_flight(app: Any) -> Any:
    """Wrap an ASGI HTTP app so ``in_flight`` counts its open requests."""

    async def counted(scope: dict[str, Any], receive: Any, send: Any) -> None:
        tracker = in_flight  # the instance this request was counted in
        task = asyncio.current_task()
        tracker.count += 1
        if task is not None:
            tracker._tasks.add(task)
        try:
            # Checked once per request, not per message: streams started before are left as is.
            await app(scope, receive, _closing(send) if tracker.draining else send)
        finally:
            tracker._tasks.discard(task)  # type: ignore[arg-type]
            tracker._finished()

    return counted


def _closing(send: Any) -> Any:
    async def send_with_close(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            headers = [h for h in message.get("headers", ()) if h[0].lower() != b"connection"]
            message = {**message, "headers": [*headers, _CLOSE]}
        await send(message)

    return send_with_close


def install_under_daphne(grace_seconds: float) -> None:
    """Replace Twisted's SIGTERM handler (stop at once) with the graceful one, under Daphne.

    Does nothing outside a Twisted reactor (tests, uvicorn). Call at import of the ASGI module:
    the handler is installed once the reactor runs, after Twisted installed its own.
    """
    if "twisted.internet.reactor" not in sys.modules:
        return
    from twisted.internet import reactor

    def install() -> None:
        signal.signal(signal.SIGTERM, lambda *_: reactor.callFromThread(_drain, reactor, grace_seconds))

    reactor.callWhenRunning(install)


def _drain(reactor: Any, grace_seconds: float) -> None:
    if in_flight.draining:  # a second SIGTERM: stop now
        logger.warning("second SIGTERM: stopping with %d requests open", in_flight.count)
        reactor.stop()
        return
    in_flight.draining = True
    _stop_listening(reactor)
    logger.info(
        "SIGTERM: stopped accepting; %d requests open, waiting up to %ss", in_flight.count, grace_seconds
    )
    asyncio.get_event_loop().create_task(_finish(reactor, grace_seconds))


def _stop_listening(reactor: Any) -> None:
    from twisted.internet.interfaces import IListeningPort

    for selectable in reactor.getReaders():
        if IListeningPort.providedBy(selectable):
            selectable.stopListening()


# After the grace period, how long cancelled requests get to unwind (record their outcome,
# give their slots back) before the hooks flush what they left.
CANCEL_SECONDS = 5.0


async def finish_open_requests(grace_seconds: float) -> None:
    """Wait for open requests up to ``grace_seconds``; then cancel the rest and let them unwind."""
    if await in_flight.wait_idle(grace_seconds):
        return
    cancelled = in_flight.cancel_all()
    logger.warning("grace period over: %d requests still open are cancelled", cancelled)
    if not await in_flight.wait_idle(CANCEL_SECONDS):
        logger.error("%d cancelled requests did not unwind in %ss", in_flight.count, CANCEL_SECONDS)


# How long a drained process waits for the peers of its idle keep-alive connections to close
# them. A reverse proxy may be writing a new request on an idle connection at the very moment
# the process closes it, and must not retry a POST it already sent: that request would fail.
# Every response during the drain says ``Connection: close``, and nginx drops an idle upstream
# connection after its ``keepalive_timeout`` (deploy/nginx: 4 s), so waiting a little longer
# lets nginx close them all first.
IDLE_CONNECTION_SECONDS = 5.0


def _open_http_connections(reactor: Any) -> int:
    """Accepted HTTP connections still open (WebSockets of the live view are not counted)."""
    from twisted.internet import tcp
    from twisted.web.http import HTTPChannel

    return sum(
        1
        for reader in reactor.getReaders()
        if isinstance(reader, tcp.Server) and isinstance(getattr(reader, "protocol", None), HTTPChannel)
    )


async def _wait_for_peers_to_close(reactor: Any, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if in_flight.count == 0 and _open_http_connections(reactor) == 0:
            return
        await asyncio.sleep(0.05)
    # Clients connected directly may keep idle connections open: they are closed on exit.


async def _finish(reactor: Any, grace_seconds: float) -> None:
    deadline = time.monotonic() + grace_seconds
    await finish_open_requests(grace_seconds)
    remaining = max(0.0, deadline - time.monotonic())
    await _wait_for_peers_to_close(reactor, min(IDLE_CONNECTION_SECONDS, remaining))
    # A request that came in on a kept-alive connection meanwhile gets the rest of the grace.
    await finish_open_requests(max(0.0, deadline - time.monotonic()))
    await run_shutdown_hooks()
    if reactor.running:
        reactor.stop()
