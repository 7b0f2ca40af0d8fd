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

3. Twisted listens with a backlog of 50 (its endpoints' default): a burst of a few hundred
   connections overflows the kernel's accept queue and clients see dropped SYNs. Every TCP
   port of the process listens with at least ``backlog`` (CCSITE_LISTEN_BACKLOG; the kernel
   caps it at net.core.somaxconn). Doing it here covers every way Daphne is started (`make
   run`, `make demo`, the benchmark, the test servers), since they all load this application.
4. Twisted's HTTP channel resets its idle timer on every byte, and that timer is 12 hours:
   a client sending its headers one byte a second holds a connection forever. Each request
   must now deliver its headers within ``header_timeout`` seconds of its first byte and its
   body within ``body_timeout`` seconds after the headers (CCSITE_HEADER_TIMEOUT,
   CCSITE_BODY_TIMEOUT), or it gets a 408 and the connection is closed; an idle keep-alive
   connection is closed after ``idle_timeout`` (CCSITE_IDLE_CONNECTION_TIMEOUT). A response
   being streamed is not affected (Twisted stops the idle timer while a request is handled).
   A request that arrives whole in one read (most do) sets no deadline timer at all.

5. Twisted's status-line table lacks many registered codes (429 Too Many Requests, 422, 451,
   ...) and Anthropic's 529: it would send "Unknown Status". Every code Python's
   ``http.HTTPStatus`` knows gets its standard phrase, and 529 gets "Overloaded".

6. Twisted's HTTP factory formats a combined-log line for every request and, as Daphne gives
   it no log file, writes it into Twisted's global log, which Daphne sends nowhere (or, at
   verbosity 2 and up, next to its own access log, which says the same): about 30 us of CPU
   per request for a line nobody reads. A factory without a log file of its own now writes
   none; Daphne's access log (``--access-log``, or stdout at its default verbosity) is untouched.

7. A response's head is sent in one write with its first body bytes (``ccsite.response_head``).

Each is installed only if Twisted still has what it replaces.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from ccsite import response_head


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


@dataclass(frozen=True, slots=True)
class ServerLimits:
    backlog: int = 2048
    header_timeout: float = 10.0
    body_timeout: float = 60.0
    idle_timeout: float = 75.0


_limits = ServerLimits()
_TIMEOUT_BODY = b'{"error":{"message":"The request was not received in time.","type":"request_timeout"}}'
REQUEST_TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json\r\nConnection: close\r\n"
    b"Content-Length: %d\r\n\r\n%b" % (len(_TIMEOUT_BODY), _TIMEOUT_BODY)
)


def _install_backlog(tcp: Any) -> None:
    listen = tcp.Port.startListening

    def start_listening(self: Any) -> Any:
        self.backlog = max(self.backlog, _limits.backlog)
        return listen(self)

    tcp.Port.startListening = start_listening


def _install_known_addresses(tcp: Any) -> None:
    """A connection's two addresses are made once, not on every request: Twisted's Request asks
    for both each time (the local one is a ``getsockname`` system call), and neither changes
    for the life of an accepted connection."""
    get_host, get_peer = tcp.Server.getHost, tcp.Server.getPeer

    def host(self: Any) -> Any:
        address = self.__dict__.get("_ccsite_host")
        if address is None:
            address = self._ccsite_host = get_host(self)
        return address

    def peer(self: Any) -> Any:
        address = self.__dict__.get("_ccsite_peer")
        if address is None:
            address = self._ccsite_peer = get_peer(self)
        return address

    tcp.Server.getHost, tcp.Server.getPeer = host, peer


def _request_deadline(channel: Any, seconds: float) -> None:
    _cancel_deadline(channel)
    channel._ccsite_deadline = channel.callLater(seconds, lambda: _request_too_slow(channel))


def _cancel_deadline(channel: Any) -> None:
    call = getattr(channel, "_ccsite_deadline", None)
    channel._ccsite_deadline = None
    if call is not None and call.active():
        call.cancel()


def _request_too_slow(channel: Any) -> None:
    channel._ccsite_deadline = None
    if channel._handlingRequest or channel.transport is None:
        return
    channel.transport.write(REQUEST_TIMEOUT_RESPONSE)
    channel.timeoutConnection()  # Twisted's own close, with its forced abort if ignored


def _install_request_deadlines(http: Any) -> None:
    channel = http.HTTPChannel
    made, received = channel.connectionMade, channel.dataReceived
    headers_done, content_done, lost = (
        channel.allHeadersReceived,
        channel.allContentReceived,
        channel.connectionLost,
    )

    def connection_made(self: Any) -> None:
        self.timeOut = min(self.timeOut or _limits.idle_timeout, _limits.idle_timeout)
        made(self)

    def data_received(self: Any, data: bytes) -> None:
        # The first bytes of a request start its clock; later bytes do not reset it. The
        # clock is set once these bytes are parsed, and only if the request is still
        # incomplete: most requests arrive whole in one read and need no timer at all.
        starting = data and not self._handlingRequest and getattr(self, "_ccsite_deadline", None) is None
        received(self, data)
        if starting and not self._handlingRequest and getattr(self, "_ccsite_deadline", None) is None:
            headers_in = getattr(self, "_ccsite_headers_in", False)
            _request_deadline(self, _limits.body_timeout if headers_in else _limits.header_timeout)

    def all_headers_received(self: Any) -> None:
        self._ccsite_headers_in = True
        if getattr(self, "_ccsite_deadline", None) is not None:  # the headers took several reads
            _request_deadline(self, _limits.body_timeout)
        headers_done(self)

    def all_content_received(self: Any) -> None:
        self._ccsite_headers_in = False
        _cancel_deadline(self)
        content_done(self)

    def connection_lost(self: Any, reason: Any) -> None:
        _cancel_deadline(self)
        lost(self, reason)

    channel.connectionMade = connection_made
    channel.dataReceived = data_received
    channel.allHeadersReceived = all_headers_received
    channel.allContentReceived = all_content_received
    channel.connectionLost = connection_lost


# Status lines for codes Twisted has no phrase for (it would send "Unknown Status").
REASON_PHRASES = {
    **{status.value: status.phrase.encode() for status in HTTPStatus},
    529: b"Overloaded",  # Anthropic's overloaded_error
}


def _install_quiet_factory_log(http: Any) -> None:
    factory = http.HTTPFactory
    start = factory.startFactory

    def start_factory(self: Any) -> None:
        start(self)
        if not self.logPath:  # Twisted's global log, not a file: nobody reads it
            self._logFile = None  # HTTPFactory.log writes nothing without one

    factory.startFactory = start_factory
    factory._ccsite_quiet_log = True


def install(limits: ServerLimits | None = None) -> bool:
    from twisted.internet import tcp
    from twisted.web import http

    for code, phrase in REASON_PHRASES.items():
        http.RESPONSES.setdefault(code, phrase)

    global _limits
    if limits is not None:
        _limits = limits
    if not getattr(http.HTTPChannel, "_ccsite_limits", False) and all(
        callable(getattr(http.HTTPChannel, name, None))
        for name in ("allHeadersReceived", "allContentReceived", "callLater")
    ):
        _install_request_deadlines(http)
        _install_backlog(tcp)
        _install_known_addresses(tcp)
        http.HTTPChannel._ccsite_limits = True

    if not getattr(http.HTTPFactory, "_ccsite_quiet_log", False) and "_logFile" in vars(http.HTTPFactory):
        _install_quiet_factory_log(http)
    response_head.install(http, http.Headers)

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
