"""Two measured fixes to Twisted's HTTP server, which Daphne serves every request through.

1. Twisted finds out whether a request body is a form by parsing its Content-Type with the
   ``email`` package's header registry: about 9% of the gateway's CPU on small requests, for a
   question a split answers. The replacement returns the same lowercased ``type/subtype`` (or
   ``text/plain`` for a malformed value, as the email parser does).
2. A TCP write in Twisted is never sent at once: it is buffered, the socket is registered for
   writability (an epoll change), sent on the next loop turn, and unregistered (another epoll
   change). For a stream of small SSE frames that is three system calls and a loop turn per
   frame, about a fifth of the gateway's CPU at 500 slow streams, and latency on every token.
   When nothing is waiting in the buffer, the write is tried on the socket at once, as asyncio's
   own transports do; whatever the socket does not take goes the usual buffered way, so order,
   flow control and error handling are Twisted's. TLS connections are left alone.

Each is installed only if Twisted still has what it replaces.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any


def content_type_of(line: bytes) -> bytes:
    value = line.split(b";", 1)[0].strip().lower()
    return value if value.count(b"/") == 1 else b"text/plain"


def _sendable_now(connection: Any) -> bool:
    """Plain TCP, open for writing, and nothing buffered that would have to go first."""
    return bool(
        connection.connected
        and not getattr(connection, "TLS", True)
        and not connection.disconnecting
        and not getattr(connection, "_writeDisconnected", True)
        and not getattr(connection, "dataBuffer", True)
        and not getattr(connection, "_tempDataBuffer", True)
    )


def _eager(buffered_write: Callable[[Any, bytes], None]) -> Callable[[Any, bytes], None]:
    def write(self: Any, data: bytes) -> None:
        if data and _sendable_now(self):
            sent = self.writeSomeData(data)
            if isinstance(sent, int):  # otherwise the connection is lost: Twisted reports it
                if sent == len(data):
                    return
                data = data[sent:]
        buffered_write(self, data)

    return write


def _eager_sequence(write: Callable[[Any, bytes], None]) -> Callable[[Any, Iterable[bytes]], None]:
    def write_sequence(self: Any, iovec: Iterable[bytes]) -> None:
        write(self, b"".join(iovec))

    return write_sequence


def install() -> bool:
    from twisted.internet import tcp
    from twisted.web import http

    if not callable(getattr(http, "_parseContentType", None)):
        return False
    http._parseContentType = content_type_of
    connection = tcp.Connection
    if getattr(connection, "_ccsite_eager", False) or not callable(
        getattr(connection, "writeSomeData", None)
    ):
        return True
    eager_write = _eager(connection.write)
    connection.write = eager_write  # type: ignore[method-assign]
    connection.writeSequence = _eager_sequence(eager_write)  # type: ignore[method-assign]
    connection._ccsite_eager = True  # type: ignore[attr-defined]
    return True
