"""An HTTP request's incoming ASGI messages, held for the application without a task per request
watching for the client to leave.

Daphne hands an application its request through a per-request ``asyncio.Queue``: the body's
``http.request`` messages, then ``http.disconnect`` when the client goes away or the response
has ended. Django's handler parks a second task on that queue for the whole request only to
notice the disconnect. ``RequestMessages`` holds the same messages in the same order for the
same ``receive`` (``get``), and also calls a callback on ``http.disconnect``, so the API handler
(``ccsite/handler.py``) watches for it without a task, a queue's locks and events, and the
task's cancellation at the end of every request.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Any

Message = dict[str, Any]


class RequestMessages:
    """Filled by Daphne (``put_nowait``), read by the application (``get``, its ``receive``)."""

    __slots__ = ("_loop", "_messages", "_getters", "_on_disconnect", "disconnected")

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()  # made by Daphne on the loop, for one request
        self._messages: deque[Message] = deque()
        self._getters: deque[asyncio.Future[None]] = deque()
        self._on_disconnect: Callable[[], object] | None = None
        self.disconnected = False  # an http.disconnect has been put

    def put_nowait(self, message: Message) -> None:
        self._messages.append(message)
        self._wake_next_getter()
        if message.get("type") == "http.disconnect":
            self.disconnected = True
            if self._on_disconnect is not None:
                self._on_disconnect()

    async def get(self) -> Message:
        """The next message, waiting for one if none is there (as ``asyncio.Queue.get``)."""
        while not self._messages:
            getter = self._loop.create_future()
            self._getters.append(getter)
            try:
                await getter
            except BaseException:
                getter.cancel()
                if not getter.cancelled() or self._messages:
                    self._wake_next_getter()  # a wake-up it took goes to the next reader
                raise
        return self._messages.popleft()

    def qsize(self) -> int:
        return len(self._messages)

    def empty(self) -> bool:
        return not self._messages

    def on_disconnect(self, callback: Callable[[], object] | None) -> None:
        """Call ``callback()`` when ``http.disconnect`` is put, at once if it already was; None
        stops calling it. It is called inside ``put_nowait``, that is inside Daphne: it should
        only schedule what it does."""
        self._on_disconnect = callback
        if callback is not None and self.disconnected:
            callback()

    def _wake_next_getter(self) -> None:
        while self._getters:
            getter = self._getters.popleft()
            if not getter.done():
                getter.set_result(None)
                return
