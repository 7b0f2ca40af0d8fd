"""ASGI plumbing of the simulator: bodies, plain responses, disconnects and NDJSON streams."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from proxy.upstream.simulator import recorder as sim_recorder
from proxy.upstream.simulator.errors import JSON_CONTENT_TYPE, RequestRejected, SimResponse
from proxy.upstream.simulator.events import StreamScript, finish_step_line
from proxy.upstream.simulator.recorder import RequestRecord
from proxy.upstream.simulator.scenarios import SimParams

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

# protocol §8.1: text/event-stream on success, though the body is bare NDJSON.
STREAM_CONTENT_TYPE = b"text/event-stream"


# Lines the pacing spaces out (orjson writes "type" first, as the events are built).
_DELTA_PREFIXES = (b'{"type":"text-delta"', b'{"type":"reasoning-delta"', b'{"type":"tool-input-delta"')


class ClientGone(Exception):
    """The client disconnected before its request body was complete."""


async def read_body(receive: Receive, limit: int) -> bytes:
    """The whole request body; 413 past ``limit`` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise RequestRejected(413, f"Request body larger than {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def send_response(send: Send, response: SimResponse) -> None:
    headers = [
        (b"content-type", JSON_CONTENT_TYPE),
        (b"content-length", str(len(response.body)).encode()),
        *response.headers,
    ]
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": response.body})


class DisconnectWatcher:
    """Notices the client leaving: ASGI's receive() returns http.disconnect once it has."""

    def __init__(self, receive: Receive) -> None:
        self.gone = asyncio.Event()
        self._sleeper: asyncio.Future[bool] | None = None
        self._task = asyncio.ensure_future(self._watch(receive))

    async def _watch(self, receive: Receive) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        self.gone.set()
        _resolve(self._sleeper, False)

    async def sleep(self, seconds: float) -> bool:
        """Wait ``seconds``; False as soon as the client disconnects.

        A bare future plus ``call_later`` (what asyncio.sleep does), not ``wait_for``: a paced
        stream sleeps once per event, and a task per sleep would cost more than the event.
        """
        if self.gone.is_set():
            return False
        loop = asyncio.get_running_loop()
        self._sleeper = loop.create_future()
        timer = loop.call_later(seconds, _resolve, self._sleeper, True)
        try:
            return await self._sleeper
        finally:
            timer.cancel()
            self._sleeper = None

    async def wait_forever(self) -> None:
        await self.gone.wait()

    def close(self) -> None:
        self._task.cancel()


def _resolve(future: asyncio.Future[bool] | None, value: bool) -> None:
    if future is not None and not future.done():
        future.set_result(value)


def _stream_start(scenario: str) -> Message:
    headers = [
        (b"content-type", STREAM_CONTENT_TYPE),
        (b"cache-control", b"no-cache"),
        (b"x-sim-scenario", scenario.encode()),
    ]
    return {"type": "http.response.start", "status": 200, "headers": headers}


def _body(data: bytes, more: bool = True) -> Message:
    return {"type": "http.response.body", "body": data, "more_body": more}


class StreamSender:
    """Sends one script; records events sent and whether the client stayed to the end."""

    def __init__(
        self, send: Send, receive: Receive, record: RequestRecord, *, response_id: str, timestamp: str
    ):
        self._send = send
        self._receive = receive
        self._record = record
        self._response_id = response_id
        self._timestamp = timestamp
        self._watcher: DisconnectWatcher | None = None

    def _needs_watcher(self, script: StreamScript, params: SimParams) -> bool:
        # Unpaced one-piece streams have no "middle" to leave in; skip the task on the hot path.
        delays = params.delay_ms or params.first_delay_ms or params.headers_delay_ms
        return bool(delays or script.stall or len(script.head_chunks) > 1)

    async def _pause(self, milliseconds: int) -> bool:
        if not milliseconds or self._watcher is None:
            return True
        return await self._watcher.sleep(milliseconds / 1000)

    def _connected(self) -> bool:
        return self._watcher is None or not self._watcher.gone.is_set()

    def _closing_lines(self, script: StreamScript) -> list[bytes]:
        if script.finish_step is None:
            return list(script.tail)
        line = finish_step_line(script, response_id=self._response_id, timestamp=self._timestamp)
        return [line, *script.tail]

    async def send(self, script: StreamScript, params: SimParams, scenario: str) -> None:
        if self._needs_watcher(script, params):
            self._watcher = DisconnectWatcher(self._receive)
        try:
            outcome = await self._send_all(script, params, scenario)
        finally:
            if self._watcher is not None:
                self._watcher.close()
        self._record.end(outcome)

    async def _send_all(self, script: StreamScript, params: SimParams, scenario: str) -> str:
        if not await self._pause(params.headers_delay_ms):
            return sim_recorder.DISCONNECTED
        self._record.status = 200
        await self._send(_stream_start(scenario))
        if not await self._pause(params.first_delay_ms):
            return sim_recorder.DISCONNECTED
        closing = self._closing_lines(script)
        if self._watcher is None:
            return await self._send_at_once(script, closing)
        if params.delay_ms:
            sent_all = await self._send_paced(script, closing, params.delay_ms)
        else:
            sent_all = await self._send_batched(script, closing)
        if sent_all and script.stall and self._watcher is not None:
            await self._watcher.wait_forever()  # protocol §10: the CLI itself never times out
            return sim_recorder.DISCONNECTED
        if not sent_all or not self._connected():
            return sim_recorder.DISCONNECTED
        await self._send(_body(b"", more=False))
        return sim_recorder.COMPLETED

    async def _emit(self, data: bytes, events: int, *, has_finish: bool = False) -> None:
        await self._send(_body(data))
        self._record.events_sent += events
        self._record.finish_sent = self._record.finish_sent or has_finish

    async def _send_at_once(self, script: StreamScript, closing: list[bytes]) -> str:
        """The hot path: the whole stream in one ASGI message (one socket write)."""
        head = script.head_chunks[0][0] if script.head_chunks else b""
        await self._send(_body(head + b"".join(closing), more=False))
        self._record.events_sent += script.event_count
        self._record.finish_sent = script.finished
        return sim_recorder.COMPLETED

    async def _send_paced(self, script: StreamScript, closing: list[bytes], delay_ms: int) -> bool:
        """One delta per ``delay_ms``: the pause comes before every delta but the first, and the
        other events ride along with the next delta (so the first token is not delayed)."""
        lines = [*script.head, *closing]
        # The closing lines are finish-step, finish, provider-metadata when the script finishes.
        finish_index = len(script.head) + 1 if script.finished else -1
        pending: list[bytes] = []
        seen_delta = False
        for index, line in enumerate(lines):
            is_delta = line.startswith(_DELTA_PREFIXES)
            if is_delta and seen_delta:
                if pending:
                    await self._emit(b"".join(pending), len(pending))
                    pending = []
                if not await self._pause(delay_ms):
                    return False
            seen_delta = seen_delta or is_delta
            pending.append(line)
            if is_delta or index == finish_index:
                await self._emit(b"".join(pending), len(pending), has_finish=index == finish_index)
                pending = []
        if pending:
            await self._emit(b"".join(pending), len(pending))
        return self._connected()

    async def _send_batched(self, script: StreamScript, closing: list[bytes]) -> bool:
        for chunk, count in script.head_chunks:
            if not self._connected():
                return False
            await self._emit(chunk, count)
        if closing and self._connected():
            await self._emit(b"".join(closing), len(closing), has_finish=script.finished)
        return self._connected()
