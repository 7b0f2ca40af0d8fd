"""A response's head leaves in one transport write with its first body bytes (Twisted's
HTTPChannel over a recording transport; the live test below reads a real socket)."""

from __future__ import annotations

import pytest
from twisted.internet.testing import StringTransport
from twisted.web import http

from ccsite import response_head, twisted_tuning


class RecordingTransport(StringTransport):
    """Each write the channel makes, as it made it."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))
        super().write(data)

    def writeSequence(self, data: list[bytes]) -> None:
        self.write(b"".join(data))


def serve(request_bytes: bytes, answer) -> RecordingTransport:
    """Feed one request to a real Twisted HTTPChannel whose requests ``answer(request)``."""
    assert twisted_tuning.install() is True

    class Answering(http.Request):
        def process(self) -> None:
            answer(self)

    channel = http.HTTPChannel()
    channel.requestFactory = Answering
    transport = RecordingTransport()
    channel.makeConnection(transport)
    channel.dataReceived(request_bytes)
    return transport


GET = b"GET /x HTTP/1.1\r\nHost: test\r\n\r\n"
BODY = b'{"ok":true}'


def with_length(request: http.Request) -> None:
    request.setHeader(b"content-type", b"application/json")
    request.setHeader(b"content-length", b"%d" % len(BODY))
    request.write(BODY)
    request.finish()


def test_a_sized_answer_is_one_write_of_head_and_body():
    transport = serve(GET, with_length)
    assert len(transport.writes) == 1
    head, _, body = transport.writes[0].partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"\r\nContent-Type: application/json" in head and b"\r\nContent-Length: 11" in head
    assert body == BODY


def test_a_chunked_answer_joins_the_head_to_the_first_chunk_only():
    def chunked(request: http.Request) -> None:
        request.write(b"first")
        request.write(b"second")
        request.finish()

    transport = serve(GET, chunked)
    assert transport.writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"Transfer-Encoding: chunked" in transport.writes[0]
    assert transport.writes[0].endswith(b"\r\n\r\n5\r\nfirst\r\n")
    assert transport.writes[1:] == [b"6\r\nsecond\r\n", b"0\r\n\r\n"]


def test_a_head_request_gets_its_head_within_the_write_call():
    seen: list[list[bytes]] = []

    def answer(request: http.Request) -> None:
        request.setHeader(b"content-length", b"%d" % len(BODY))
        request.write(BODY)  # a HEAD answer sends no body: the head must not wait for one
        seen.append(list(request.channel.transport.writes))
        request.finish()

    transport = serve(b"HEAD /x HTTP/1.1\r\nHost: test\r\n\r\n", answer)
    assert len(seen[0]) == 1 and seen[0][0].endswith(b"Content-Length: 11\r\n\r\n")
    assert transport.writes == seen[0]


@pytest.mark.parametrize("code", [204, 304])
def test_a_bodiless_status_sends_its_head_alone(code):
    def answer(request: http.Request) -> None:
        request.setResponseCode(code)
        request.write(b"ignored")
        request.finish()

    transport = serve(GET, answer)
    (only,) = transport.writes
    assert only.startswith(b"HTTP/1.1 %d " % code) and only.endswith(b"\r\n\r\n")


def test_an_empty_first_write_sends_the_head_at_once():
    seen: list[int] = []

    def answer(request: http.Request) -> None:
        request.write(b"")  # a stream that starts its headers before its first event
        seen.append(len(request.channel.transport.writes))
        request.write(b"event")
        request.finish()

    transport = serve(GET, answer)
    assert seen == [1] and transport.writes[0].endswith(b"chunked\r\n\r\n")
    assert transport.writes[1] == b"5\r\nevent\r\n"


def test_the_head_is_laid_out_as_twisted_lays_it_out():
    headers = http.Headers({b"X-One": [b"a", b"b"], b"Content-Length": [b"0"]})
    transport = StringTransport()
    channel = http.HTTPChannel()
    channel.makeConnection(transport)
    channel.writeHeaders(b"HTTP/1.1", b"200", b"OK", headers)  # not holding: Twisted's own
    assert response_head.head_bytes(b"HTTP/1.1", b"200", b"OK", headers) == transport.value()


def test_the_last_chunk_leaves_with_the_terminator():
    def chunked(request: http.Request) -> None:
        request.write(b"first")
        with response_head.last_write_joined(request.channel):
            request.write(b"last")
            request.finish()

    transport = serve(GET, chunked)
    assert transport.writes[0].endswith(b"\r\n\r\n5\r\nfirst\r\n")
    assert transport.writes[1:] == [b"4\r\nlast\r\n0\r\n\r\n"]


def test_what_is_held_without_a_terminator_is_written_when_the_block_ends():
    def chunked(request: http.Request) -> None:
        request.write(b"first")
        with response_head.last_write_joined(request.channel):
            request.write(b"held")
            assert request.channel.transport.writes[-1].endswith(b"first\r\n")  # not yet
        request.finish()

    transport = serve(GET, chunked)
    assert transport.writes[1:] == [b"4\r\nheld\r\n", b"0\r\n\r\n"]


def test_a_pipelined_requests_answer_follows_the_end_of_the_previous_one():
    answered: list[http.Request] = []

    def answer(request: http.Request) -> None:
        answered.append(request)
        if len(answered) == 1:
            request.write(b"one")
            with response_head.last_write_joined(request.channel):
                request.write(b"last")
                request.finish()  # moves on to the pipelined request, answered at once below
        else:
            request.setHeader(b"content-length", b"3")
            request.write(b"two")
            request.finish()

    transport = serve(GET + GET, answer)
    assert len(answered) == 2
    assert transport.writes[1] == b"4\r\nlast\r\n0\r\n\r\n"
    assert transport.writes[2].startswith(b"HTTP/1.1 200 OK\r\n") and transport.writes[2].endswith(b"two")
