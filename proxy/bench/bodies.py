"""Incremental readers of response bodies: they collect the answer text and know when a
response is complete. One per wire format the benchmark measures."""

from __future__ import annotations

from typing import Any

import orjson


class BodyReader:
    """Base: subclasses parse ``feed``-ed bytes; ``text`` is the answer, ``complete`` its end."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.events = 0
        self.complete = False
        self.has_text = False
        self._buffer = b""

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def add_text(self, text: str) -> None:
        if text:
            self.parts.append(text)
            self.has_text = True

    def feed(self, data: bytes) -> None:
        raise NotImplementedError

    def end(self) -> None:
        """The body ended (sized or last chunk)."""


class _SseReader(BodyReader):
    def feed(self, data: bytes) -> None:
        buffer = self._buffer + data
        *blocks, self._buffer = buffer.split(b"\n\n")
        for block in blocks:
            self._block(block)

    def _block(self, block: bytes) -> None:
        event, payload = b"", b""
        for line in block.split(b"\n"):
            if line.startswith(b"data: "):
                payload = line[6:]
            elif line.startswith(b"event: "):
                event = line[7:]
        if payload:
            self.events += 1
            self.on_event(event, payload)

    def on_event(self, event: bytes, payload: bytes) -> None:
        raise NotImplementedError


class OpenAIStreamReader(_SseReader):
    def on_event(self, event: bytes, payload: bytes) -> None:
        if payload == b"[DONE]":
            self.complete = True
            return
        chunk = orjson.loads(payload)
        for choice in chunk.get("choices") or ():
            self.add_text(choice["delta"].get("content") or "")


class AnthropicStreamReader(_SseReader):
    def on_event(self, event: bytes, payload: bytes) -> None:
        if event == b"content_block_delta":
            delta = orjson.loads(payload)["delta"]
            if delta.get("type") == "text_delta":
                self.add_text(delta["text"])
        elif event == b"message_stop":
            self.complete = True


class ResponsesStreamReader(_SseReader):
    def on_event(self, event: bytes, payload: bytes) -> None:
        if event == b"response.output_text.delta":
            self.add_text(orjson.loads(payload)["delta"])
        elif event == b"response.completed":
            self.complete = True


class NdjsonReader(BodyReader):
    """Command Code's own stream (the direct path to the simulator)."""

    def feed(self, data: bytes) -> None:
        buffer = self._buffer + data
        *lines, self._buffer = buffer.split(b"\n")
        for line in lines:
            if line:
                self.events += 1
                self._line(orjson.loads(line))

    def _line(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "text-delta":
            self.add_text(event["text"])
        elif kind == "finish":
            self.complete = True


class _JsonReader(BodyReader):
    def feed(self, data: bytes) -> None:
        self._buffer += data

    def end(self) -> None:
        body = orjson.loads(self._buffer)
        self.events = 1
        self.add_text(self.extract(body))
        self.complete = True

    def extract(self, body: dict[str, Any]) -> str:
        raise NotImplementedError


class OpenAIJsonReader(_JsonReader):
    def extract(self, body: dict[str, Any]) -> str:
        return body["choices"][0]["message"]["content"] or ""


class AnthropicJsonReader(_JsonReader):
    def extract(self, body: dict[str, Any]) -> str:
        return "".join(block["text"] for block in body["content"] if block["type"] == "text")


class ResponsesJsonReader(_JsonReader):
    def extract(self, body: dict[str, Any]) -> str:
        messages = [item for item in body["output"] if item["type"] == "message"]
        return "".join(part["text"] for item in messages for part in item["content"])


READERS: dict[str, type[BodyReader]] = {
    "openai-sse": OpenAIStreamReader,
    "anthropic-sse": AnthropicStreamReader,
    "ndjson": NdjsonReader,
    "openai-json": OpenAIJsonReader,
    "anthropic-json": AnthropicJsonReader,
    "responses-sse": ResponsesStreamReader,
    "responses-json": ResponsesJsonReader,
}


def reader_for(name: str) -> BodyReader:
    return READERS[name]()
