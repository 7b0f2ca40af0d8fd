"""A streamed body's final part leaves with the end of the response (ccsite/handler.py,
ccsite/response_head.py, ccsite/daphne_tuning.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from django.http import StreamingHttpResponse

from ccsite.handler import GatewayASGIHandler
from ccsite.stream_parts import FinalPart


async def _sent(parts: list[bytes], events: list[str]) -> list[dict]:
    async def body() -> AsyncIterator[bytes]:
        try:
            for part in parts:
                yield part
        finally:
            events.append("clean-up")

    response = StreamingHttpResponse(body(), content_type="text/event-stream")
    messages: list[dict] = []

    async def send(message: dict) -> None:
        events.append(
            f"send {message['type']} {message.get('body', b'')!r} {message.get('more_body', False)}"
        )
        messages.append(message)

    await GatewayASGIHandler()._send_stream(response, send)
    return messages


async def test_the_final_part_is_the_last_message_sent_after_the_iterator_ended():
    events: list[str] = []
    messages = await _sent([b"a", b"b", FinalPart(b"end")], events)
    bodies = [(m.get("body"), m.get("more_body", False)) for m in messages[1:]]
    assert bodies == [(b"a", True), (b"b", True), (b"end", False)]
    assert events[-2:] == ["clean-up", "send http.response.body b'end' False"]


async def test_without_a_final_part_the_end_is_an_empty_message():
    messages = await _sent([b"a"], [])
    assert [(m.get("body"), m.get("more_body", False)) for m in messages[1:]] == [(b"a", True), (b"", False)]


async def test_a_part_after_a_final_one_still_goes_out_in_order():
    messages = await _sent([FinalPart(b"x"), b"y"], [])
    assert [(m.get("body"), m.get("more_body", False)) for m in messages[1:]] == [
        (b"x", True),
        (b"y", True),
        (b"", False),
    ]
