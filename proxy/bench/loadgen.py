"""A small, fast HTTP/1.1 load generator for the benchmark (no Django, no httpx).

It keeps one persistent connection per concurrent worker, parses responses incrementally
(chunked or sized bodies; SSE or NDJSON streams) and checks every answer's text against the
expected text exactly: a fast wrong answer counts as an error. Run as a process of its own:

    python -m proxy.bench.loadgen < spec.json > result.json
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from proxy.bench.bodies import BodyReader, reader_for


@dataclass(frozen=True, slots=True)
class LoadSpec:
    host: str
    port: int
    path: str
    headers: dict[str, str]
    body: bytes
    reader: str  # which BodyReader parses the response (see proxy/bench/bodies.py)
    expected_text: str
    concurrency: int
    duration: float  # seconds of load after the warm-up
    max_requests: int  # per worker; bounds short runs (smoke tests)
    warmup: int = 1  # requests per worker before measuring
    # Spread the workers' starts evenly over this many seconds: long streams then arrive at a
    # steady rate, as they do in use, instead of all in the same instant (0: all at once).
    stagger: float = 0.0


@dataclass(slots=True)
class Sample:
    ok: bool
    error: str = ""
    first_byte: float = 0.0  # seconds from sending the request to the first body byte
    first_token: float = 0.0  # ... to the first piece of answer text
    total: float = 0.0
    events: int = 0


class ResponseError(Exception):
    pass


class _Connection(asyncio.Protocol):
    """One keep-alive connection; one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._waiter: asyncio.Future[None] | None = None
        self._on_data: Callable[[], None] | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if self._on_data is not None:
            self._on_data()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._on_data is not None:
            self._on_data()

    def take(self) -> bytes:
        data = bytes(self._buffer)
        self._buffer.clear()
        return data

    def watch(self, callback: Callable[[], None] | None) -> None:
        self._on_data = callback


class _ResponseParser:
    """Status line, headers, then a sized or chunked body fed to a BodyReader."""

    def __init__(self, reader: BodyReader, started: float, sample: Sample) -> None:
        self.reader = reader
        self.started = started
        self.sample = sample
        self.head = bytearray()
        self.status = 0
        self.remaining: int | None = None  # sized body bytes left
        self.chunked = False
        self.chunk_buffer = bytearray()
        self.keep_alive = True
        self.done = False

    def feed(self, data: bytes) -> None:
        if not self.status:
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end == -1:
                return
            data = bytes(self.head[end + 4 :])
            self._parse_head(bytes(self.head[:end]))
        if data:
            self._body(data)

    def _parse_head(self, head: bytes) -> None:
        lines = head.split(b"\r\n")
        self.status = int(lines[0].split(b" ", 2)[1])
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name, value = name.strip().lower(), value.strip().lower()
            if name == b"content-length":
                self.remaining = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value:
                self.chunked = True
            elif name == b"connection" and value == b"close":
                self.keep_alive = False
        if not self.chunked and self.remaining == 0:
            self._finish()

    def _body(self, data: bytes) -> None:
        if self.chunked:
            self._chunked(data)
        else:
            self._payload(data[: self.remaining] if self.remaining is not None else data)
            if self.remaining is not None:
                self.remaining -= len(data)
                if self.remaining <= 0:
                    self._finish()

    def _chunked(self, data: bytes) -> None:
        buffer = self.chunk_buffer
        buffer += data
        while True:
            line_end = buffer.find(b"\r\n")
            if line_end == -1:
                return
            size = int(buffer[:line_end].split(b";", 1)[0], 16)
            if len(buffer) < line_end + 2 + size + 2:
                return
            chunk = bytes(buffer[line_end + 2 : line_end + 2 + size])
            del buffer[: line_end + 2 + size + 2]
            if size == 0:
                self._finish()
                return
            self._payload(chunk)

    def _payload(self, chunk: bytes) -> None:
        if not chunk:
            return
        now = time.perf_counter()
        if not self.sample.first_byte:
            self.sample.first_byte = now - self.started
        had_text = self.reader.has_text
        self.reader.feed(chunk)
        if not had_text and self.reader.has_text:
            self.sample.first_token = now - self.started

    def _finish(self) -> None:
        self.reader.end()
        self.done = True


def _request_bytes(spec: LoadSpec) -> bytes:
    lines = [f"POST {spec.path} HTTP/1.1", f"Host: {spec.host}:{spec.port}"]
    lines += [f"{name}: {value}" for name, value in spec.headers.items()]
    lines += [f"Content-Length: {len(spec.body)}", "", ""]
    return "\r\n".join(lines).encode() + spec.body


class Worker:
    def __init__(self, spec: LoadSpec, request: bytes) -> None:
        self.spec = spec
        self.request = request
        self.conn: _Connection | None = None

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(_Connection, self.spec.host, self.spec.port)
        return conn

    async def one(self) -> Sample:
        if self.conn is None or self.conn.closed:
            self.conn = await self._connect()
        conn = self.conn
        sample = Sample(ok=False)
        started = time.perf_counter()
        parser = _ResponseParser(reader_for(self.spec.reader), started, sample)
        done = asyncio.get_running_loop().create_future()

        def on_data() -> None:
            try:
                parser.feed(conn.take())
            except (ValueError, IndexError, ResponseError) as exc:
                parser.done = True
                sample.error = f"unparseable response: {exc}"
            if (parser.done or conn.closed) and not done.done():
                done.set_result(None)

        conn.watch(on_data)
        assert conn.transport is not None
        conn.transport.write(self.request)
        await done
        conn.watch(None)
        sample.total = time.perf_counter() - started
        self._judge(parser, sample)
        if not parser.keep_alive or not parser.done:
            conn.transport.close()
            self.conn = None
        return sample

    def _judge(self, parser: _ResponseParser, sample: Sample) -> None:
        reader = parser.reader
        sample.events = reader.events
        if sample.error:
            return
        if not parser.done:
            sample.error = "connection closed mid-response"
        elif parser.status != 200:
            sample.error = f"HTTP {parser.status}"
        elif not reader.complete:
            sample.error = "stream ended without its terminator"
        elif reader.text != self.spec.expected_text:
            sample.error = f"wrong text ({len(reader.text)} chars, expected {len(self.spec.expected_text)})"
        else:
            sample.ok = True


@dataclass
class LoadResult:
    samples: list[Sample] = field(default_factory=list)
    wall: float = 0.0
    connect_errors: int = 0
    warmup_events: int = 0  # relayed during the warm-up (counted in the gateway's CPU time)
    warmup_requests: int = 0  # answered during the warm-up (counted in the gateway's CPU time)


async def _warm(worker: Worker, result: LoadResult) -> None:
    try:
        for _ in range(worker.spec.warmup):
            result.warmup_events += (await worker.one()).events
            result.warmup_requests += 1
    except OSError as exc:
        result.connect_errors += 1
        result.samples.append(Sample(ok=False, error=f"connection failed: {exc}"))


async def _measure(worker: Worker, deadline: float, result: LoadResult) -> None:
    count = 0
    try:
        while time.perf_counter() < deadline and count < worker.spec.max_requests:
            result.samples.append(await worker.one())
            count += 1
    except OSError as exc:
        result.connect_errors += 1
        result.samples.append(Sample(ok=False, error=f"connection failed: {exc}"))


async def run(spec: LoadSpec) -> LoadResult:
    """Warm every connection up, then keep `concurrency` requests in flight for `duration` s."""
    request = _request_bytes(spec)
    result = LoadResult()
    workers = [Worker(spec, request) for _ in range(spec.concurrency)]
    if spec.stagger > 0:
        return await _run_staggered(workers, spec, result)
    await asyncio.gather(*(_warm(worker, result) for worker in workers))
    started = time.perf_counter()
    deadline = started + spec.duration
    await asyncio.gather(*(_measure(worker, deadline, result) for worker in workers))
    result.wall = time.perf_counter() - started
    return result


async def _run_staggered(workers: list[Worker], spec: LoadSpec, result: LoadResult) -> LoadResult:
    """Each worker starts at its own offset, warms up, and measures for `duration` seconds."""
    step = spec.stagger / len(workers)

    async def one(index: int, worker: Worker) -> None:
        await asyncio.sleep(index * step)
        await _warm(worker, result)
        await _measure(worker, time.perf_counter() + spec.duration, result)

    await asyncio.gather(*(one(index, worker) for index, worker in enumerate(workers)))
    result.wall = spec.duration  # every worker measured for exactly this long
    return result


def _spec_from_json(data: dict[str, Any]) -> LoadSpec:
    data = dict(data)
    data["body"] = data["body"].encode()
    return LoadSpec(**data)


def main() -> None:
    spec = _spec_from_json(json.load(sys.stdin))
    result = asyncio.run(run(spec))
    json.dump(
        {
            "wall": result.wall,
            "connect_errors": result.connect_errors,
            "warmup_events": result.warmup_events,
            "warmup_requests": result.warmup_requests,
            "samples": [asdict(s) for s in result.samples],
        },
        sys.stdout,
    )


if __name__ == "__main__":
    main()
