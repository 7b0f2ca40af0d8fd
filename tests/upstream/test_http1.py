"""The lean upstream HTTP/1.1 client against canned servers on loopback: framing, encodings,
keep-alive reuse, stale connections, limits and malformed answers."""

from __future__ import annotations

import asyncio
import gzip
import zlib
from collections.abc import Awaitable, Callable

import pytest

from proxy.upstream.http1 import ConnectionPool, UpstreamConnectionError, _Body

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return head, await reader.readexactly(length)


class Server:
    def __init__(self, answers: list[bytes], *, close_after: bool = False) -> None:
        self.answers = answers
        self.close_after = close_after
        self.requests: list[tuple[bytes, bytes]] = []
        self.connections = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while self.answers:
                self.requests.append(await read_request(reader))
                writer.write(self.answers.pop(0))
                await writer.drain()
                if self.close_after:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


async def serve(server: Server) -> tuple[asyncio.Server, ConnectionPool]:
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    pool = ConnectionPool(f"http://127.0.0.1:{port}", connect_timeout=2, max_connections=4, max_idle=4)
    return listener, pool


async def body_of(pool: ConnectionPool, payload: bytes = b"{}") -> tuple[int, bytes]:
    response = await pool.request("POST", "/alpha/generate", {"content-type": "application/json"}, payload)
    chunks = []
    while (chunk := await response.read_chunk()) is not None:
        chunks.append(chunk)
    await response.aclose()
    return response.status_code, b"".join(chunks)


def chunked(*pieces: bytes) -> bytes:
    body = b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces) + b"0\r\n\r\n"
    return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + body


async def test_chunked_bodies_are_reused_over_one_keepalive_connection():
    server = Server([chunked(b'{"a":1}\n', b'{"b":2}\n'), chunked(b"second")])
    listener, pool = await serve(server)
    async with listener:
        assert await body_of(pool, b'{"x": 1}') == (200, b'{"a":1}\n{"b":2}\n')
        assert await body_of(pool) == (200, b"second")
        await pool.aclose()
    assert server.connections == 1
    head, body = server.requests[0]
    assert head.startswith(b"POST /alpha/generate HTTP/1.1\r\nHost: 127.0.0.1:")
    assert b"Content-Length: 8\r\n" in head and body == b'{"x": 1}'


async def test_content_length_and_gzip_and_deflate():
    text = b'{"type":"text-delta","text":"hi"}\n' * 50
    for encoding, data in (("gzip", gzip.compress(text)), ("deflate", zlib.compress(text))):
        answer = (
            f"HTTP/1.1 200 OK\r\nContent-Encoding: {encoding}\r\nContent-Length: {len(data)}\r\n\r\n"
        ).encode() + data
        listener, pool = await serve(Server([answer]))
        async with listener:
            assert await body_of(pool) == (200, text)
            await pool.aclose()


async def test_close_delimited_body_ends_at_eof_and_is_not_reused():
    server = Server(
        [b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of it", chunked(b"x")], close_after=True
    )
    listener, pool = await serve(server)
    async with listener:
        assert await body_of(pool) == (200, b"all of it")
        assert await body_of(pool) == (200, b"x")
        await pool.aclose()
    assert server.connections == 2


async def test_a_stale_keepalive_connection_is_retried_on_a_new_one():
    # The server answers once per connection, then closes: the pooled connection is stale.
    server = Server([chunked(b"one"), chunked(b"two")], close_after=True)
    listener, pool = await serve(server)
    async with listener:
        assert await body_of(pool) == (200, b"one")
        await asyncio.sleep(0.05)
        assert await body_of(pool) == (200, b"two")
        await pool.aclose()


async def test_error_statuses_and_headers_are_exposed():
    answer = b'HTTP/1.1 429 Too Many Requests\r\nRetry-After: 7\r\nContent-Length: 11\r\n\r\n{"error":1}'
    listener, pool = await serve(Server([answer]))
    async with listener:
        response = await pool.request("POST", "/", {}, b"")
        assert response.status_code == 429 and response.headers["retry-after"] == "7"
        assert await response.read(1000) == b'{"error":1}'
        await response.aclose()
        await pool.aclose()


@pytest.mark.parametrize(
    "answer",
    [
        b"SPDY/9 200 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nshort",
        b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 70000,
    ],
    ids=["not-http", "bad-chunk-size", "short-body", "huge-headers"],
)
async def test_malformed_answers_are_connection_errors(answer):
    listener, pool = await serve(Server([answer], close_after=True))
    async with listener:
        with pytest.raises(UpstreamConnectionError):
            await body_of(pool)
        await pool.aclose()


async def test_connection_refused_is_a_connection_error():
    listener, pool = await serve(Server([]))
    listener.close()
    await listener.wait_closed()
    with pytest.raises(UpstreamConnectionError, match="connect failed"):
        await pool.request("POST", "/", {}, b"")


async def test_abandoned_response_closes_its_connection_and_frees_the_slot():
    server = Server([chunked(b"a" * 10, b"b" * 10)] * 6)
    listener, pool = await serve(server)
    async with listener:
        for _ in range(6):  # more than max_connections: slots must come back
            response = await pool.request("POST", "/", {}, b"")
            await response.aclose()  # body not read: the connection cannot be reused
        await pool.aclose()
    assert server.connections == 6


async def test_the_connection_limit_makes_requests_wait_for_a_slot():
    gate = asyncio.Event()

    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await gate.wait()
        writer.write(chunked(b"done"))
        await writer.drain()
        writer.close()

    listener = await asyncio.start_server(slow, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    pool = ConnectionPool(f"http://127.0.0.1:{port}", connect_timeout=2, max_connections=2, max_idle=2)
    async with listener:
        tasks = [asyncio.ensure_future(body_of(pool)) for _ in range(3)]
        await asyncio.sleep(0.2)
        assert pool._open == 2 and len(pool._slot_waiters) == 1
        gate.set()
        assert [await task for task in tasks] == [(200, b"done")] * 3
        await pool.aclose()


def test_chunked_framing_survives_every_split_point():
    raw = chunked(b'{"type":"text-delta"}\n', b"x" * 300, b"\xe2\x80\xa8end").split(b"\r\n\r\n", 1)[1]
    for cut in range(len(raw) + 1):
        body = _Body(None, chunked=True)
        out = body.feed(raw[:cut]) + body.feed(raw[cut:])
        assert out == b'{"type":"text-delta"}\n' + b"x" * 300 + b"\xe2\x80\xa8end"
        assert body.complete
