"""A lean HTTP/1.1 client for the one upstream the gateway talks to, on asyncio protocols.

The gateway makes one kind of call, a POST whose answer streams for seconds or minutes, to one
host. A general client (httpx over httpcore, anyio and h11) spent about 40% of the gateway's
CPU on small requests, and its pool scans every pooled connection on each request and each
release, which collapses with hundreds of open streams. This client does only what that call
needs: keep-alive connections kept in a LIFO list (O(1) to take and give back, no scan), a
bounded number of connections, fixed-length, chunked and close-delimited bodies, gzip and
deflate, TLS with certifi's roots, and flow control so a slow reader never buffers without
bound. Through an outbound HTTP proxy (``proxy=``, see proxy/upstream/outbound.py) an http
upstream is asked in absolute form and an https upstream through a CONNECT tunnel, with TLS
end to end; ``user:password@`` in the proxy URL becomes Proxy-Authorization (Basic).

Why our own client and not aiohttp's (3.14.5, C parser, connection pool, proxy support): measured
in one ``make bench`` run (``--only b,d,c500 --duration 8``; proxy/upstream/aiohttp_pool.py is the
drop-in, ``CC_UPSTREAM_CLIENT=aiohttp``), on the shared 2-core machine while other benchmarks ran:

    b, c=32 fast streams   ours 17.2 us/event, 62.9 req/s   aiohttp 23.2 us/event (+35.5%), 49.5 req/s
    c500 slow streams      ours 829 ok / 0 errors           aiohttp 836 ok / 214 errors (upstream
                           TTFT p99 6.8 s (machine loaded)   failures cooled the only key -> 429)
    d, c=16 small requests ours 88 req/s, 3.1 ms CPU/request aiohttp: the run stalled and never finished
                                                             (load generator timed out after 152 s)

The bar was at most +10% CPU per relayed event and per small request, and 0 errors at c500 with
first-token p99 <= 50 ms. aiohttp misses it on CPU (+35% per event) and on errors, so this client
stays (it is the relay path), with outbound proxy support added here. Figures are noisy (other
helpers' benchmarks shared the cores); the ratios are from one run.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import certifi

MAX_HEADER_BYTES = 64 * 1024
READ_HIGH_WATER = 1024 * 1024  # pause the socket when this much body is waiting unread
KEEPALIVE_SECONDS = 30.0


class UpstreamConnectionError(OSError):
    """The connection failed, or the server broke HTTP/1.1 framing."""


@dataclass(frozen=True, slots=True)
class Origin:
    scheme: str
    host: str
    port: int

    @classmethod
    def parse(cls, base_url: str) -> Origin:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) base URL: {base_url!r}")
        return cls(parts.scheme, parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        return self.host if self.port == default else f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class Proxy:
    """An outbound HTTP proxy (http:// only; https upstreams are tunnelled with CONNECT)."""

    host: str
    port: int
    authorization: str | None = None  # a Proxy-Authorization value

    @classmethod
    def parse(cls, url: str) -> Proxy:
        parts = urlsplit(url if "://" in url else f"http://{url}")
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"outbound proxy must be an http:// URL, got {parts.scheme}://")
        authorization = None
        if parts.username is not None:
            pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
            authorization = "Basic " + base64.b64encode(pair).decode("ascii")
        return cls(parts.hostname, parts.port or 80, authorization)


class _Tunnel(asyncio.Protocol):
    """Reads the proxy's answer to CONNECT (a head only; TLS starts once it is 200)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.answer: asyncio.Future[bytes] = loop.create_future()
        self._buffer = bytearray()

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        end = self._buffer.find(b"\r\n\r\n")
        if end >= 0 and not self.answer.done():
            self.answer.set_result(bytes(self._buffer[:end]))
        elif len(self._buffer) > MAX_HEADER_BYTES and not self.answer.done():
            self.answer.set_exception(UpstreamConnectionError("proxy answer to CONNECT too large"))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.answer.done():
            self.answer.set_exception(UpstreamConnectionError("proxy closed the connection during CONNECT"))


class _Body:
    """Incremental body framing: fixed length, chunked, or until the connection closes."""

    def __init__(self, length: int | None, chunked: bool) -> None:
        self.remaining = length
        self.chunked = chunked
        self.complete = length == 0
        self._buffer = bytearray()
        self._state = "size"  # chunked: size line, data, the CRLF after data, trailers
        self._chunk_left = 0

    def feed(self, data: bytes) -> bytes:
        """The payload bytes in ``data``; sets ``complete`` at the end of the body."""
        if not self.chunked:
            if self.remaining is None:
                return data
            payload = data[: self.remaining]
            self.remaining -= len(payload)
            self.complete = self.remaining == 0
            return payload
        self._buffer += data
        return self._dechunk()

    def _dechunk(self) -> bytes:
        out = bytearray()
        buffer = self._buffer
        while buffer and not self.complete:
            if self._state == "data":
                piece = buffer[: self._chunk_left]
                out += piece
                del buffer[: len(piece)]
                self._chunk_left -= len(piece)
                if self._chunk_left == 0:
                    self._state = "crlf"
                continue
            end = buffer.find(b"\r\n")
            if end == -1:
                if len(buffer) > MAX_HEADER_BYTES:
                    raise UpstreamConnectionError("malformed chunked body")
                break
            line = bytes(buffer[:end])
            del buffer[: end + 2]
            self._on_line(line)
        return bytes(out)

    def _on_line(self, line: bytes) -> None:
        if self._state == "crlf":
            if line:
                raise UpstreamConnectionError("malformed chunked body")
            self._state = "size"
        elif self._state == "trailers":
            self.complete = not line
        else:
            self._chunk_left = self._chunk_size(line)
            self._state = "data" if self._chunk_left else "trailers"

    @staticmethod
    def _chunk_size(line: bytes) -> int:
        try:
            return int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise UpstreamConnectionError("malformed chunk size") from None


def _decoder(encoding: str) -> zlib._Decompress | None:
    if encoding in ("", "identity"):
        return None
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if encoding == "deflate":
        return zlib.decompressobj()
    raise UpstreamConnectionError(f"unsupported content-encoding {encoding!r}")


class Connection(asyncio.Protocol):
    """One keep-alive connection; serves one response at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.discarded = False  # counted out of the pool
        self.idle_since = 0.0
        self.requests = 0
        self._head = bytearray()
        self._body: _Body | None = None
        self._chunks: list[bytes] = []
        self._pending = 0
        self._paused = False
        self._eof = False
        self._error: Exception | None = None
        self._waiter: asyncio.Future[None] | None = None
        self.status = 0
        self.headers: dict[str, str] = {}
        self.keep_alive = True

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            if self._body is None:
                self._receive_head(data)
            else:
                self._receive_body(data)
        except UpstreamConnectionError as exc:
            self._fail(exc)

    def eof_received(self) -> bool:
        self._eof = True
        self._wake()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._eof = True
        if exc is not None and self._error is None:
            self._error = UpstreamConnectionError(str(exc) or type(exc).__name__)
        self._wake()

    # Request side

    def send(self, head: bytes, body: bytes) -> None:
        self.requests += 1
        self._head.clear()
        self._body, self._chunks, self._pending, self._eof, self._error = None, [], 0, False, None
        self.status, self.headers, self.keep_alive = 0, {}, True
        assert self.transport is not None
        self.transport.write(head + body)

    async def read_head(self) -> None:
        while self._body is None:
            self._raise_if_failed()
            if self._eof:
                raise UpstreamConnectionError("connection closed before a response")
            await self._wait()

    async def read_chunk(self) -> bytes | None:
        """Next body bytes (raw, before content decoding); None at the end of the body."""
        while not self._chunks:
            body = self._body
            if body is not None and body.complete:
                return None
            self._raise_if_failed()
            if self._eof:
                if body is not None and body.remaining is None and not body.chunked:
                    return None  # a close-delimited body ends here
                raise UpstreamConnectionError("connection closed in the middle of the body")
            await self._wait()
        data = b"".join(self._chunks) if len(self._chunks) > 1 else self._chunks[0]
        self._chunks, self._pending = [], 0
        if self._paused and self.transport is not None and not self.closed:
            self._paused = False
            self.transport.resume_reading()
        return data

    @property
    def reusable(self) -> bool:
        body = self._body
        return (
            not self.closed
            and self.keep_alive
            and body is not None
            and body.complete
            and not self._chunks
            and self._error is None
        )

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    # Internals

    def _receive_head(self, data: bytes) -> None:
        self._head += data
        end = self._head.find(b"\r\n\r\n")
        if end == -1:
            if len(self._head) > MAX_HEADER_BYTES:
                raise UpstreamConnectionError("response headers too large")
            return
        rest = bytes(self._head[end + 4 :])
        self._parse_head(bytes(self._head[:end]))
        self._wake()
        if rest:
            self._receive_body(rest)

    def _parse_head(self, head: bytes) -> None:
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
            raise UpstreamConnectionError("not an HTTP/1.1 response")
        try:
            self.status = int(parts[1])
        except ValueError:
            raise UpstreamConnectionError("bad status line") from None
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            key = name.strip().lower()
            headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
        self.headers = headers
        self.keep_alive = parts[0] == "HTTP/1.1" and "close" not in headers.get("connection", "").lower()
        self._body = self._framing(headers)

    def _framing(self, headers: Mapping[str, str]) -> _Body:
        if "chunked" in headers.get("transfer-encoding", "").lower():
            return _Body(None, chunked=True)
        if "content-length" in headers:
            try:
                return _Body(int(headers["content-length"]), chunked=False)
            except ValueError:
                raise UpstreamConnectionError("bad content-length") from None
        if self.status in (204, 304) or 100 <= self.status < 200:
            return _Body(0, chunked=False)
        self.keep_alive = False
        return _Body(None, chunked=False)

    def _receive_body(self, data: bytes) -> None:
        assert self._body is not None
        payload = self._body.feed(data)
        if payload:
            self._chunks.append(payload)
            self._pending += len(payload)
            if self._pending > READ_HIGH_WATER and not self._paused and self.transport is not None:
                self._paused = True
                self.transport.pause_reading()
        if payload or self._body.complete:
            self._wake()

    def _fail(self, exc: Exception) -> None:
        self._error = exc
        self.close()
        self._wake()

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise self._error

    async def _wait(self) -> None:
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class Response:
    """A response whose headers arrived; read the body with ``chunks`` and always ``aclose``."""

    def __init__(self, pool: ConnectionPool, connection: Connection) -> None:
        self._pool = pool
        self._connection = connection
        self.status_code = connection.status
        self.headers = connection.headers
        self._decoder = _decoder(self.headers.get("content-encoding", "").strip().lower())
        self._released = False

    async def read_chunk(self) -> bytes | None:
        """Next decoded body bytes; None at the end."""
        while True:
            raw = await self._connection.read_chunk()
            if raw is None:
                if self._decoder is not None:
                    tail, self._decoder = self._decoder.flush(), None
                    if tail:
                        return tail
                return None
            data = self._decoder.decompress(raw) if self._decoder is not None else raw
            if data:
                return data

    async def read(self, limit: int) -> bytes:
        data = bytearray()
        while len(data) < limit:
            chunk = await self.read_chunk()
            if chunk is None:
                break
            data += chunk
        return bytes(data[:limit])

    async def aclose(self) -> None:
        """Give a fully read connection back to the pool; close any other at once."""
        if not self._released:
            self._released = True
            self._pool.release(self._connection)


class ConnectionPool:
    def __init__(
        self,
        base_url: str,
        *,
        connect_timeout: float,
        max_connections: int,
        max_idle: int,
        proxy: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.origin = Origin.parse(base_url)
        self.proxy = Proxy.parse(proxy) if proxy else None
        # Plain http through a proxy: absolute-form request targets (RFC 9112 §3.2.2).
        self._forward = self.proxy is not None and self.origin.scheme == "http"
        self._connect_timeout = connect_timeout
        self._max_connections = max_connections
        self._max_idle = max_idle
        self._idle: list[Connection] = []
        self._open = 0
        self._slot_waiters: list[asyncio.Future[None]] = []
        self._ssl = (ssl_context or self._tls_context()) if self.origin.scheme == "https" else None
        self.closed = False

    @staticmethod
    def _tls_context() -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=certifi.where())
        context.set_alpn_protocols(["http/1.1"])
        return context

    def _request_head(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> bytes:
        target = f"http://{self.origin.host_header}{path}" if self._forward else path
        lines = [f"{method} {target} HTTP/1.1", f"Host: {self.origin.host_header}"]
        if self._forward and self.proxy is not None and self.proxy.authorization:
            lines.append(f"Proxy-Authorization: {self.proxy.authorization}")
        lines += [f"{name}: {value}" for name, value in headers.items()]
        lines += [f"Content-Length: {len(body)}", "", ""]
        return "\r\n".join(lines).encode("latin-1")

    async def request(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> Response:
        """Send a request and wait for the response headers."""
        head = self._request_head(method, path, headers, body)
        connection = await self._acquire()
        try:
            reused = connection.requests > 0
            connection.send(head, body)
            try:
                await connection.read_head()
            except UpstreamConnectionError:
                if not reused:
                    raise
                # A kept-alive connection the server had already closed: nothing was
                # processed, so send once more on a new connection.
                self._discard(connection)
                connection = await self._acquire(fresh=True)
                connection.send(head, body)
                await connection.read_head()
        except BaseException:
            self._discard(connection)
            raise
        return Response(self, connection)

    async def _acquire(self, *, fresh: bool = False) -> Connection:
        while True:
            connection = None if fresh else self._take_idle()
            if connection is not None:
                return connection
            if self._open < self._max_connections:
                break
            waiter = asyncio.get_running_loop().create_future()
            self._slot_waiters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._slot_waiters:
                    self._slot_waiters.remove(waiter)
        self._open += 1
        try:
            return await self._connect()
        except BaseException:
            self._open -= 1
            self._wake_slot()
            raise

    def _take_idle(self) -> Connection | None:
        """The most recently used live idle connection (LIFO: the warmest, O(1))."""
        now = time.monotonic()
        while self._idle:
            connection = self._idle.pop()
            if not connection.closed and now - connection.idle_since < KEEPALIVE_SECONDS:
                return connection
            self._discard(connection)
        return None

    async def _connect(self) -> Connection:
        origin = self.origin
        try:
            async with asyncio.timeout(self._connect_timeout):
                if self.proxy is not None and self._ssl is not None:
                    return await self._connect_tunnel(self.proxy)
                host, port = (self.proxy.host, self.proxy.port) if self.proxy else (origin.host, origin.port)
                _, protocol = await asyncio.get_running_loop().create_connection(
                    Connection,
                    host,
                    port,
                    ssl=self._ssl,
                    server_hostname=origin.host if self._ssl else None,
                )
        except TimeoutError:
            raise UpstreamConnectionError(f"connect timeout after {self._connect_timeout:g}s") from None
        except UpstreamConnectionError:
            raise
        except OSError as exc:
            raise UpstreamConnectionError(f"connect failed: {type(exc).__name__}") from None
        return protocol

    async def _connect_tunnel(self, proxy: Proxy) -> Connection:
        """CONNECT through the proxy, then TLS to the upstream inside the tunnel."""
        loop = asyncio.get_running_loop()
        origin = self.origin
        transport, tunnel = await loop.create_connection(lambda: _Tunnel(loop), proxy.host, proxy.port)
        try:
            authority = f"{origin.host}:{origin.port}"
            lines = [f"CONNECT {authority} HTTP/1.1", f"Host: {authority}"]
            if proxy.authorization:
                lines.append(f"Proxy-Authorization: {proxy.authorization}")
            transport.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
            head = await tunnel.answer
            status_line = head.split(b"\r\n", 1)[0].split()
            if len(status_line) < 2 or status_line[1] != b"200":
                shown = b" ".join(status_line[1:3]).decode("latin-1", "replace")
                raise UpstreamConnectionError(f"proxy refused CONNECT: {shown}")
            connection = Connection()
            tls = await loop.start_tls(transport, connection, self._ssl, server_hostname=origin.host)  # type: ignore[arg-type]
            if tls is None:
                raise UpstreamConnectionError("TLS through the proxy tunnel failed")
            connection.connection_made(tls)
            return connection
        except BaseException:
            transport.close()
            raise

    def release(self, connection: Connection) -> None:
        if connection.reusable and not self.closed and len(self._idle) < self._max_idle:
            connection.idle_since = time.monotonic()
            self._idle.append(connection)
            self._wake_slot()  # a waiting request can take it
        else:
            self._discard(connection)

    def _discard(self, connection: Connection) -> None:
        if not connection.discarded:
            connection.discarded = True
            connection.close()
            self._open -= 1
            self._wake_slot()

    def _wake_slot(self) -> None:
        while self._slot_waiters:
            waiter = self._slot_waiters.pop(0)
            if not waiter.done():
                waiter.set_result(None)
                return

    async def aclose(self) -> None:
        self.closed = True
        while self._idle:
            self._discard(self._idle.pop())
