"""Every /v1 request leaves exactly one RequestOutcome: served, failed, refused or cancelled,
with the tokens the upstream reported, and the upstream is always closed."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from proxy import outcomes
from proxy.outcomes import RequestOutcome
from proxy.streaming import _relay, collect
from proxy.translate.events import Finish, TextDelta, ToolCall, UpstreamEvent, Usage
from proxy.translate.failures import FailureKind, UpstreamFailure
from proxy.translate.openai_in import parse_chat_request
from proxy.translate.openai_out import ChatEncoder
from proxy.upstream.errors import UpstreamError

USAGE = Usage(input_tokens=12, output_tokens=3)
FAILURE = UpstreamFailure(FailureKind.RETRYABLE, 502, "stream_truncated", "cut short")


class FakeStream:
    def __init__(self, batches: list[list[UpstreamEvent]], *, fail: bool = False) -> None:
        self._batches = batches
        self._fail = fail
        self.closed = False
        self.usage: Usage | None = None
        self.ready = False

    async def batches(self, tick: float) -> AsyncIterator[list[UpstreamEvent]]:
        for batch in self._batches:
            if self.closed:  # a closed stream yields only what it had already queued
                return
            for event in batch:
                if isinstance(event, Finish):
                    self.usage = event.usage
            yield batch
        if self._fail:
            raise UpstreamError(FAILURE)

    async def aclose(self) -> None:
        self.closed = True


@pytest.fixture
def recorded(monkeypatch):
    seen: list[RequestOutcome] = []
    monkeypatch.setattr(outcomes, "_recorders", [seen.append])
    return seen


def encoder(stream: bool) -> ChatEncoder:
    chat = parse_chat_request(
        {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": stream}, {}
    )
    return ChatEncoder(chat, completion_id="chatcmpl-1", created=1)


def outcome() -> RequestOutcome:
    return RequestOutcome("openai", None, "m", "m", True)


async def test_a_served_stream_records_ok_with_usage(recorded):
    stream = FakeStream([[TextDelta("hi")], [Finish("stop", "stop", USAGE)]])
    body = b"".join([chunk async for chunk in _relay(stream, encoder(True), outcome())])
    assert body.endswith(b"data: [DONE]\n\n")
    assert [(o.status, o.usage) for o in recorded] == [("ok", USAGE)]
    assert stream.closed


async def test_a_failed_stream_records_the_failure(recorded):
    stream = FakeStream([[TextDelta("hi")]], fail=True)
    body = b"".join([chunk async for chunk in _relay(stream, encoder(True), outcome())])
    assert b'"error"' in body
    assert [(o.status, o.error_kind) for o in recorded] == [("error", "retryable")]
    assert stream.closed


async def test_a_client_that_goes_away_records_a_cancelled_request(recorded):
    stream = FakeStream([[TextDelta("a")], [TextDelta("b")], [Finish("stop", "stop", USAGE)]])
    relay = _relay(stream, encoder(True), outcome())
    await anext(relay)  # headers and the first frame went out, then the client left
    await relay.aclose()
    assert [o.status for o in recorded] == ["cancelled"]
    assert stream.closed


async def test_a_non_streaming_reply_records_once(recorded):
    stream = FakeStream([[TextDelta("hi"), Finish("stop", "stop", USAGE)]])
    body = await collect(stream, encoder(False), outcome())
    assert body["choices"][0]["message"]["content"] == "hi"
    assert [(o.status, o.usage) for o in recorded] == [("ok", USAGE)]


@pytest.mark.django_db(transaction=True)
async def test_refused_and_unservable_requests_are_recorded(recorded, async_client, client_key):
    headers = {"Authorization": f"Bearer {client_key[1]}"}
    await async_client.post("/v1/chat/completions", "{}", content_type="application/json", headers=headers)
    good = json.dumps({"model": "deepseek-v4-flash", "messages": [{"role": "user", "content": "hi"}]})
    await async_client.post("/v1/chat/completions", good, content_type="application/json", headers=headers)
    assert [(o.status, o.error_kind) for o in recorded] == [
        ("invalid", "invalid_request"),
        ("error", "no_upstream_credential"),
    ]
    assert recorded[1].principal is not None and recorded[1].upstream_model == "deepseek/deepseek-v4-flash"


async def test_the_opening_waits_for_events_that_are_already_there(recorded):
    stream = FakeStream([[TextDelta("hi")], [Finish("stop", "stop", USAGE)]])
    stream.ready = True
    chunks = [chunk async for chunk in _relay(stream, encoder(True), outcome())]
    assert b'"role":"assistant"' in chunks[0] and b'"content":"hi"' in chunks[0]  # one write


async def test_the_opening_goes_out_at_once_when_the_upstream_is_quiet(recorded):
    stream = FakeStream([[TextDelta("hi")], [Finish("stop", "stop", USAGE)]])
    chunks = [chunk async for chunk in _relay(stream, encoder(True), outcome())]
    assert b'"role":"assistant"' in chunks[0] and b'"content":"hi"' not in chunks[0]  # flushes headers


def estimating_encoder(stream: bool, **body: object) -> ChatEncoder:
    chat = parse_chat_request(
        {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": stream, **body}, {}
    )
    return ChatEncoder(chat, completion_id="chatcmpl-1", created=1, input_estimate=30)


async def test_a_reply_ended_at_a_stop_sequence_records_the_estimate(recorded):
    stream = FakeStream([[TextDelta("hello world")], [Finish("stop", "stop", USAGE)]])
    body = b"".join(
        [chunk async for chunk in _relay(stream, estimating_encoder(True, stop=["world"]), outcome())]
    )
    assert b'"content":"hello "' in body
    (recorded_outcome,) = recorded
    assert recorded_outcome.usage_estimated is True
    assert recorded_outcome.usage == Usage(input_tokens=30, output_tokens=3)  # "hello " / 2.5


async def test_a_client_that_goes_away_mid_stream_records_the_estimate(recorded):
    stream = FakeStream([[TextDelta("abcde")], [TextDelta("b")], [Finish("stop", "stop", USAGE)]])
    relay = _relay(stream, estimating_encoder(True), outcome())
    await anext(relay)  # the opening
    await anext(relay)  # "abcde"
    await relay.aclose()
    (recorded_outcome,) = recorded
    assert recorded_outcome.status == "cancelled" and recorded_outcome.usage_estimated is True
    assert recorded_outcome.usage == Usage(input_tokens=30, output_tokens=2)


async def test_the_upstreams_usage_is_not_marked_estimated(recorded):
    stream = FakeStream([[TextDelta("hi"), Finish("stop", "stop", USAGE)]])
    await collect(stream, estimating_encoder(False), outcome())
    assert [(o.usage, o.usage_estimated) for o in recorded] == [(USAGE, False)]


async def test_a_non_streaming_reply_with_one_tool_call_records_the_estimate(recorded):
    calls = [ToolCall(f"c{i}", "f", {"x": i}) for i in range(3)]
    stream = FakeStream([calls, [Finish("tool-calls", "tool_calls", USAGE)]])
    body = await collect(stream, estimating_encoder(False, parallel_tool_calls=False), outcome())
    assert len(body["choices"][0]["message"]["tool_calls"]) == 1
    assert body["usage"]["prompt_tokens"] == 30 and body["usage"]["completion_tokens"] > 0
    assert [o.usage_estimated for o in recorded] == [True]


async def test_a_failed_reply_keeps_no_estimate(recorded):
    stream = FakeStream([[TextDelta("hi")]], fail=True)
    [chunk async for chunk in _relay(stream, estimating_encoder(True), outcome())]
    assert [(o.usage, o.usage_estimated) for o in recorded] == [(None, False)]


async def test_the_first_token_goes_out_before_the_rest_of_its_batch(recorded):
    stream = FakeStream([[TextDelta("a"), TextDelta("b"), TextDelta("c")], [Finish("stop", "stop", USAGE)]])
    stream.ready = True
    relayed = outcome()
    chunks = [chunk async for chunk in _relay(stream, encoder(True), relayed)]
    assert b'"role":"assistant"' in chunks[0] and b'"content":"a"' in chunks[0]
    assert b'"content":"b"' not in chunks[0]  # written before "b" and "c" were translated
    assert b'"content":"b"' in chunks[1] and b'"content":"c"' in chunks[1]
    assert relayed.first_token_ms is not None and relayed.status == "ok"


async def test_a_reply_ended_by_its_first_token_still_reports_the_usage_that_came_with_it(recorded):
    # A stop sequence met by the first token ends the reply there; the finish that arrived in
    # the same batch is still read, as when the batch was translated whole: the usage chunk
    # carries the upstream's usage, not an estimate.
    chat = parse_chat_request(
        {
            "model": "m",
            "messages": [{"role": "user", "content": "hi"}],
            "stream": True,
            "stop": ["lo"],
            "stream_options": {"include_usage": True},
        },
        {},
    )
    stream = FakeStream([[TextDelta("Hello "), TextDelta("there"), Finish("stop", "stop", USAGE)]])
    stream.ready = True
    relayed = outcome()
    body = b"".join(
        [chunk async for chunk in _relay(stream, ChatEncoder(chat, completion_id="c", created=1), relayed)]
    )
    usage = json.loads(body.split(b"data: ")[-2])["usage"]
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == (12, 3)
    assert '"content":"Hel"' in body.decode() and "there" not in body.decode()
    assert [(o.status, o.usage, o.usage_estimated) for o in recorded] == [("ok", USAGE, False)]


async def test_the_closing_frames_are_the_final_part(recorded):
    from ccsite.stream_parts import FinalPart

    stream = FakeStream([[TextDelta("a")], [TextDelta("b"), Finish("stop", "stop", USAGE)]])
    stream.ready = True
    chunks = [chunk async for chunk in _relay(stream, encoder(True), outcome())]
    assert [type(chunk) for chunk in chunks] == [bytes, bytes, FinalPart]
    assert b'"content":"b"' in chunks[1] and b'"content":"b"' not in chunks[2]
    assert chunks[2].endswith(b"data: [DONE]\n\n") and b'"finish_reason":"stop"' in chunks[2]
    assert [(o.status, o.usage) for o in recorded] == [("ok", USAGE)]


async def test_a_failure_is_the_final_part(recorded):
    from ccsite.stream_parts import FinalPart

    stream = FakeStream([[TextDelta("hi")]], fail=True)
    chunks = [chunk async for chunk in _relay(stream, encoder(True), outcome())]
    assert type(chunks[-1]) is FinalPart and b'"error"' in chunks[-1]
