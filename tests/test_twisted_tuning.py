"""The Content-Type shortcut installed into Twisted answers exactly as the email parser did."""

from __future__ import annotations

from email.message import EmailMessage

import pytest

from ccsite import twisted_tuning

VALUES = [
    b"application/json",
    b"Application/JSON; charset=utf-8",
    b"application/json, application/json",
    b"multipart/form-data; boundary=----x",
    b" application/x-www-form-urlencoded ",
    b"text",
    b"",
    b"a/b/c",
    b"/json",
    b"json/",
]


@pytest.mark.parametrize("value", VALUES)
def test_same_answer_as_the_email_parser(value):
    message = EmailMessage()
    message["content-type"] = value.decode("charmap")
    assert twisted_tuning.content_type_of(value) == message.get_content_type().encode("charmap")


def test_it_is_installed_into_twisted():
    from twisted.web import http

    assert twisted_tuning.install() is True
    assert http._parseContentType is twisted_tuning.content_type_of


class FakeConnection:
    """The attributes of twisted.internet.tcp.Connection that the eager write reads."""

    def __init__(
        self, *, accepts: int | Exception = 10**9, buffered: bool = False, tls: bool = False
    ) -> None:
        self.connected, self.disconnecting, self._writeDisconnected, self.TLS = True, False, False, tls
        self.dataBuffer = b""
        self._tempDataBuffer: list[bytes] = [b"earlier"] if buffered else []
        self.accepts = accepts
        self.sent: list[bytes] = []
        self.queued: list[bytes] = []

    def writeSomeData(self, data: bytes) -> int | Exception:
        if isinstance(self.accepts, Exception):
            return self.accepts
        taken = bytes(data[: self.accepts])
        self.sent.append(taken)
        return len(taken)


def eager_writer():
    def buffered(connection: FakeConnection, data: bytes) -> None:
        connection.queued.append(data)

    return twisted_tuning._eager(buffered)


def test_a_write_with_nothing_buffered_goes_to_the_socket_at_once():
    connection, write = FakeConnection(), eager_writer()
    write(connection, b"data: 1\n\n")
    assert connection.sent == [b"data: 1\n\n"] and connection.queued == []


def test_what_the_socket_does_not_take_is_buffered_in_order():
    connection, write = FakeConnection(accepts=4), eager_writer()
    write(connection, b"data: 1\n\n")
    assert connection.sent == [b"data"] and connection.queued == [b": 1\n\n"]


@pytest.mark.parametrize("options", [{"buffered": True}, {"tls": True}, {"accepts": ConnectionError("lost")}])
def test_buffered_data_tls_and_lost_connections_take_twisteds_own_path(options):
    connection, write = FakeConnection(**options), eager_writer()
    write(connection, b"frame")
    assert connection.queued == [b"frame"]
    assert connection.sent == []


def test_write_sequence_joins_the_pieces():
    connection = FakeConnection()
    write_sequence = twisted_tuning._eager_sequence(eager_writer())
    write_sequence(connection, [b"a", b"b", b"c"])
    assert connection.sent == [b"abc"]


def test_the_eager_write_is_installed_on_twisted_tcp_connections():
    from twisted.internet import tcp

    twisted_tuning.install()
    assert getattr(tcp.Connection, "_ccsite_eager", False) is True


def test_every_registered_status_gets_its_standard_phrase():
    from twisted.web import http

    twisted_tuning.install()
    assert http.RESPONSES[429] == b"Too Many Requests"
    assert http.RESPONSES[422] == b"Unprocessable Entity"
    assert http.RESPONSES[529] == b"Overloaded"


def _finished_request(factory):
    from twisted.web import http
    from twisted.web.test.requesthelper import DummyChannel

    channel = DummyChannel()
    channel.factory = factory
    request = http.Request(channel)
    request.method, request.uri, request.clientproto = b"POST", b"/v1/chat/completions", b"HTTP/1.1"
    request.code, request.sentLength = 200, 321
    return request


def test_a_factory_without_a_log_file_formats_no_access_line(monkeypatch):
    from twisted.web import http

    twisted_tuning.install()
    formatted = []

    def formatter(timestamp, request):
        formatted.append(request.uri)
        return "line"

    factory = http.HTTPFactory(logFormatter=formatter)  # as Daphne makes it: no logPath
    factory.startFactory()
    try:
        factory.log(_finished_request(factory))
    finally:
        factory.stopFactory()
    assert formatted == []


def test_a_factory_with_a_log_file_still_writes_its_access_line(tmp_path):
    from twisted.web import http

    twisted_tuning.install()
    path = tmp_path / "access.log"
    factory = http.HTTPFactory(logPath=str(path))
    factory.startFactory()
    try:
        factory.log(_finished_request(factory))
    finally:
        factory.stopFactory()
    assert '"POST /v1/chat/completions HTTP/1.1" 200 321' in path.read_text()


def _channel_on_a_clock():
    from twisted.internet.task import Clock
    from twisted.internet.testing import StringTransport
    from twisted.web import http

    twisted_tuning.install()
    clock = Clock()
    channel = http.HTTPChannel()
    channel.callLater = clock.callLater
    channel.requestFactory = lambda *args, **kwargs: _NoReply(*args, **kwargs)
    channel.makeConnection(StringTransport())
    return channel, clock


class _NoReply:
    """A request that is only received (the application would answer later)."""

    def __new__(cls, *args, **kwargs):
        from twisted.web import http

        class Held(http.Request):
            def process(self) -> None:
                pass

        return Held(*args, **kwargs)


REQUEST_HEAD = b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n"


def test_a_request_that_arrives_whole_sets_no_deadline_timer():
    channel, clock = _channel_on_a_clock()
    made = []
    channel.callLater = lambda seconds, *args: made.append(seconds) or clock.callLater(seconds, *args)
    channel.dataReceived(REQUEST_HEAD + b"{}")
    assert channel._handlingRequest
    assert twisted_tuning._limits.header_timeout not in made
    assert twisted_tuning._limits.body_timeout not in made
    assert getattr(channel, "_ccsite_deadline", None) is None
    assert not [call for call in clock.getDelayedCalls() if call.active()]  # idle timer paused too


def test_a_request_cut_after_its_headers_gets_the_body_deadline():
    channel, clock = _channel_on_a_clock()
    channel.dataReceived(REQUEST_HEAD + b"{")
    deadline = channel._ccsite_deadline
    assert deadline is not None and deadline.getTime() == twisted_tuning._limits.body_timeout
    channel.dataReceived(b"}")
    assert not deadline.active() and channel._handlingRequest


def test_headers_in_pieces_get_the_header_deadline_then_the_body_one():
    channel, clock = _channel_on_a_clock()
    channel.dataReceived(REQUEST_HEAD[:20])
    first = channel._ccsite_deadline
    assert first.getTime() == twisted_tuning._limits.header_timeout
    clock.advance(1)
    channel.dataReceived(REQUEST_HEAD[20:])
    assert not first.active()
    assert channel._ccsite_deadline.getTime() == 1 + twisted_tuning._limits.body_timeout


def test_a_connections_addresses_are_read_once_and_are_twisteds():
    import socket

    from twisted.internet import tcp
    from twisted.internet.address import IPv4Address

    assert twisted_tuning.install() is True
    listener = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(listener.getsockname())
    accepted, peer = listener.accept()
    calls: list[str] = []

    class Counting:  # the socket, counting getsockname calls
        def __init__(self, sock):
            self.sock = sock

        def getsockname(self):
            calls.append("getsockname")
            return self.sock.getsockname()

        def fileno(self):
            return self.sock.fileno()

    try:
        server = tcp.Server.__new__(tcp.Server)
        server.socket, server.client, server._addressType = Counting(accepted), peer, IPv4Address
        assert server.getHost() == IPv4Address("TCP", *accepted.getsockname())
        assert server.getPeer() == IPv4Address("TCP", *peer)
        assert server.getHost() is server.getHost() and server.getPeer() is server.getPeer()
        assert calls == ["getsockname"]
    finally:
        for sock in (client, accepted, listener):
            sock.close()
