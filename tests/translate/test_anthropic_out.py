"""Command Code events -> Anthropic Messages SSE and bodies (pure: no DB, no event loop).

The real Anthropic SDK is the oracle where it helps: it reads the SSE the encoder writes (over
an in-memory transport, no sockets) and validates non-streaming bodies strictly.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import anthropic
import httpx2
import pytest

from proxy.translate import thinking
from proxy.translate.anthropic_in import MessagesRequest, parse_messages_request
from proxy.translate.anthropic_out import PING, MessagesEncoder
from proxy.translate.errors import FailedResponse
from proxy.translate.events import (
    Abort,
    ErrorEvent,
    Finish,
    ProviderMetadata,
    ReasoningDelta,
    ReasoningEnd,
    ReasoningStart,
    TextDelta,
    ToolCall,
    ToolInputDelta,
    ToolInputStart,
    ToolResult,
    UpstreamEvent,
    Usage,
    parse_event,
)
from proxy.translate.failures import FailureKind, UpstreamFailure, classify_inband_error
from tests.golden import FIXTURES, GOLDEN, assert_golden, check_anthropic_sse, parse_sse

KEY = b"test-thinking-key"
MESSAGE_ID = "msg_golden"
STREAMS = FIXTURES / "upstream"
CASES = [
    "01-text-only",
    "02-reasoning-then-text",
    "03-tool-call",
    "interleaved-reasoning-tool",
    "parallel-tool-calls-interleaved",
    "provider-executed-tool",
    "length-cutoff",
]


def request_for(
    model: str = "claude-opus-5-5",
    *,
    stream: bool = True,
    stop: list[str] | None = None,
    thinking: dict[str, Any] | None = None,
    tool_choice: dict[str, Any] | None = None,
) -> MessagesRequest:
    """Thinking is enabled unless told otherwise: most cases here show reasoning blocks."""
    body: dict[str, Any] = {
        "model": model,
        "max_tokens": 1024,
        "messages": [{"role": "user", "content": "hi"}],
        "stream": stream,
        "thinking": thinking or {"type": "adaptive"},
    }
    if tool_choice:
        body["tool_choice"] = tool_choice
        body["tools"] = [{"name": "get_weather", "input_schema": {"type": "object"}}]
    if stop:
        body["stop_sequences"] = stop
    return parse_messages_request(body, {}, thinking_key=KEY)


def encoder_for(**kwargs: Any) -> MessagesEncoder:
    return MessagesEncoder(request_for(**kwargs), message_id=MESSAGE_ID, thinking_key=KEY)


def load_events(case: str) -> list[UpstreamEvent]:
    lines = (STREAMS / f"{case}.ndjson").read_text().splitlines()
    parsed = (parse_event(json.loads(line)) for line in lines if line.strip())
    return [event for event in parsed if event is not None]


def run(encoder: MessagesEncoder, events: Iterable[UpstreamEvent]) -> bytes:
    """What the relay does: start, feed until done, close."""
    out = encoder.start()
    for event in events:
        out += encoder.feed(event)
        if encoder.done:
            break
    return out + encoder.close()


def events_of(raw: bytes) -> list[dict[str, Any]]:
    return [json.loads(data) for _, data in parse_sse(raw)]


def finish(reason: str = "stop", raw: str | None = "stop", **usage: int) -> Finish:
    return Finish(reason=reason, raw_reason=raw, usage=Usage(**usage))


def _client(handler: Any) -> anthropic.Anthropic:
    transport = httpx2.MockTransport(handler)
    return anthropic.Anthropic(
        api_key="test",
        base_url="http://gateway.test",
        http_client=httpx2.Client(transport=transport),
        max_retries=0,
        _strict_response_validation=True,
    )


def sdk_stream(raw: bytes) -> Any:
    """The SDK's own accumulation of our SSE (what messages.stream() users get)."""

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, content=raw, headers={"content-type": "text/event-stream"})

    client = _client(handler)
    with client.messages.stream(
        model="m", max_tokens=16, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        return stream.get_final_message()


def sdk_body(body: dict[str, Any]) -> Any:
    """A non-streaming body parsed with the SDK's strict response validation."""

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, json=body)

    return _client(handler).messages.create(
        model="m", max_tokens=16, messages=[{"role": "user", "content": "hi"}]
    )


def _dump(model: Any) -> list[dict[str, Any]]:
    return [block.model_dump(exclude_none=True) for block in model.content]


@pytest.mark.parametrize("case", CASES)
def test_stream_golden(request: pytest.FixtureRequest, case: str) -> None:
    raw = run(encoder_for(), load_events(case))
    check_anthropic_sse(raw)
    assert_golden(request, GOLDEN / "anthropic" / f"{case}.sse", raw)


@pytest.mark.parametrize("case", CASES)
def test_body_golden(request: pytest.FixtureRequest, case: str) -> None:
    encoder = encoder_for(stream=False)
    for event in load_events(case):
        encoder.feed(event)
    encoder.close()
    body = encoder.final_body()
    assert_golden(request, GOLDEN / "anthropic" / f"{case}.json", body)


@pytest.mark.parametrize("case", CASES)
def test_sdk_reads_the_stream_as_the_same_message_as_the_body(case: str) -> None:
    """One encoder, two replies: the SDK's accumulated stream equals the non-streaming body."""
    events = load_events(case)
    streamed = sdk_stream(run(encoder_for(), events))
    encoder = encoder_for(stream=False)
    for event in events:
        encoder.feed(event)
    body = encoder.final_body()
    parsed = sdk_body(body)
    assert _dump(streamed) == body["content"] == _dump(parsed)
    assert streamed.stop_reason == body["stop_reason"] == parsed.stop_reason
    assert streamed.usage.input_tokens == body["usage"]["input_tokens"] == parsed.usage.input_tokens
    assert streamed.usage.output_tokens == body["usage"]["output_tokens"]
    assert streamed.usage.cache_read_input_tokens == body["usage"]["cache_read_input_tokens"]
    assert streamed.model == "claude-opus-5-5"


def test_message_start_carries_zero_usage_and_message_delta_the_final_usage() -> None:
    raw = run(encoder_for(), load_events("01-text-only"))
    events = events_of(raw)
    assert events[0]["message"]["usage"] == {
        "input_tokens": 0,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": 0,
    }
    assert events[0]["message"]["model"] == "claude-opus-5-5"
    assert events[0]["message"]["id"] == MESSAGE_ID
    delta = next(event for event in events if event["type"] == "message_delta")
    # 2004 total input = 212 uncached + 1792 cache reads: input_tokens is the uncached part
    # only, so clients that add the cache fields back get 2004, not 3796 (protocol §14).
    assert delta["usage"] == {
        "input_tokens": 212,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 1792,
        "output_tokens": 11,
    }


def test_usage_subtracts_cache_writes_too() -> None:
    encoder = encoder_for(stream=False)
    for event in load_events("interleaved-reasoning-tool"):
        encoder.feed(event)
    usage = encoder.final_body()["usage"]
    assert usage == {
        "input_tokens": 200,
        "cache_creation_input_tokens": 1000,
        "cache_read_input_tokens": 4000,
        "output_tokens": 90,
    }
    assert (
        sum(usage[key] for key in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"))
        == 5200
    )
    assert encoder.usage == Usage(5200, 4000, 1000, 90, 50)


def test_thinking_block_is_signed_over_its_full_text_just_before_stop() -> None:
    events = events_of(run(encoder_for(), load_events("02-reasoning-then-text")))
    kinds = [(event["type"], event.get("delta", {}).get("type")) for event in events]
    assert kinds[:6] == [
        ("message_start", None),
        ("content_block_start", None),
        ("content_block_delta", "thinking_delta"),
        ("content_block_delta", "thinking_delta"),
        ("content_block_delta", "signature_delta"),
        ("content_block_stop", None),
    ]
    assert events[1]["content_block"] == {"type": "thinking", "thinking": "", "signature": ""}
    signature = events[4]["delta"]["signature"]
    full_text = "The user wants the sum of 17 and 25. 17 + 25 = 42."
    assert signature.startswith(thinking.PREFIX)
    assert thinking.verify(full_text, signature, KEY)


def test_signed_thinking_round_trips_and_tampered_thinking_is_dropped() -> None:
    """A thinking block from our reply is accepted when sent back; an edited one is not."""
    encoder = encoder_for(stream=False)
    for event in load_events("02-reasoning-then-text"):
        encoder.feed(event)
    content = encoder.final_body()["content"]
    tampered = [{**content[0], "thinking": content[0]["thinking"] + " Also rm -rf."}, content[1]]

    def replay(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
        body = {
            "model": "claude-opus-5-5",
            "max_tokens": 100,
            "messages": [
                {"role": "user", "content": "sum?"},
                {"role": "assistant", "content": blocks},
                {"role": "user", "content": "thanks"},
            ],
        }
        return parse_messages_request(body, {}, thinking_key=KEY).upstream.messages[1]["content"]

    assert replay(content) == [
        {"type": "reasoning", "text": content[0]["thinking"]},
        {"type": "text", "text": "17 + 25 = 42"},
    ]
    assert replay(tampered) == [{"type": "text", "text": "17 + 25 = 42"}]


def test_each_reasoning_start_opens_a_new_signed_thinking_block() -> None:
    encoder = encoder_for(stream=False)
    for event in [
        ReasoningStart(),
        ReasoningDelta("one"),
        ReasoningStart(),
        ReasoningDelta("two"),
        ReasoningEnd(),
        finish(),
    ]:
        encoder.feed(event)
    content = encoder.final_body()["content"]
    assert [block["thinking"] for block in content] == ["one", "two"]
    assert all(thinking.verify(block["thinking"], block["signature"], KEY) for block in content)


def test_tool_call_without_streamed_input_is_sent_as_one_json_delta() -> None:
    raw = run(
        encoder_for(), [ToolCall("call_1", "lookup", {"word": "ok", "n": [1, 2]}), finish("tool-calls")]
    )
    events = events_of(raw)
    assert events[1]["content_block"] == {"type": "tool_use", "id": "call_1", "name": "lookup", "input": {}}
    deltas = [event["delta"] for event in events if event["type"] == "content_block_delta"]
    assert deltas == [{"type": "input_json_delta", "partial_json": '{"word":"ok","n":[1,2]}'}]
    assert events[-2]["delta"]["stop_reason"] == "tool_use"


def test_interleaved_parallel_tool_calls_each_get_one_block() -> None:
    raw = run(encoder_for(), load_events("parallel-tool-calls-interleaved"))
    check_anthropic_sse(raw)
    message = sdk_stream(raw)
    assert [(block.id, block.name, block.input) for block in message.content] == [
        ("call_a", "glob", {"pattern": "*.py"}),
        ("call_b", "grep", {"query": "TODO", "path": "src"}),
        ("call_c", "read_file", {"path": "README.md"}),
    ]


def test_tool_call_without_id_gets_a_generated_one() -> None:
    encoder = encoder_for(stream=False)
    encoder.feed(ToolCall("", "lookup", {}))
    block = encoder.final_body()["content"][0]
    assert block["id"] == f"toolu_{MESSAGE_ID}_0"


def test_stream_cut_inside_tool_arguments_still_gives_a_parsed_or_empty_input() -> None:
    encoder = encoder_for(stream=False)
    for event in [ToolInputStart("c1", "f"), ToolInputDelta("c1", '{"a": 1}')]:
        encoder.feed(event)
    assert encoder.final_body()["content"][0]["input"] == {"a": 1}
    broken = encoder_for(stream=False)
    for event in [ToolInputStart("c1", "f"), ToolInputDelta("c1", '{"a": ')]:
        broken.feed(event)
    assert broken.final_body()["content"][0]["input"] == {}


def test_provider_executed_tools_show_nothing() -> None:
    encoder = encoder_for(stream=False)
    for event in load_events("provider-executed-tool"):
        encoder.feed(event)
    body = encoder.final_body()
    assert body["content"] == [{"type": "text", "text": "It is a gateway."}]
    assert body["stop_reason"] == "end_turn"
    assert encoder.feed(ToolResult("x", "web_search", {"a": 1})) == b""


@pytest.mark.parametrize(
    ("events", "stop_reason"),
    [
        ([TextDelta("hi"), finish("stop", "stop")], "end_turn"),
        ([TextDelta("hi"), finish("length", "max_tokens")], "max_tokens"),
        ([TextDelta("hi"), finish("other", "max_output_tokens")], "max_tokens"),
        ([ToolCall("c", "f", {}), finish("tool-calls", "tool_calls")], "tool_use"),
        ([ToolCall("c", "f", {}), finish("stop", "stop")], "tool_use"),  # calls always stop for tool_use
        ([TextDelta("no"), finish("content-filter", "refusal")], "refusal"),
        ([TextDelta("wait"), finish("other", "pause_turn")], "pause_turn"),
        ([TextDelta("cut"), Abort("client gone")], "end_turn"),
        ([TextDelta("eof")], "end_turn"),
    ],
)
def test_every_stop_reason(events: list[UpstreamEvent], stop_reason: str) -> None:
    raw = run(encoder_for(), events)
    decoded = check_anthropic_sse(raw)
    assert decoded[-2]["delta"] == {"stop_reason": stop_reason, "stop_sequence": None}
    body_encoder = encoder_for(stream=False)
    for event in events:
        body_encoder.feed(event)
    assert body_encoder.final_body()["stop_reason"] == stop_reason


def test_stop_sequence_split_across_deltas_cuts_the_text_and_ends_the_stream() -> None:
    encoder = encoder_for(stop=["STOP"])
    raw = encoder.start()
    raw += encoder.feed(TextDelta("Hello wor"))
    raw += encoder.feed(TextDelta("ld ST"))
    assert not encoder.done
    raw += encoder.feed(TextDelta("OP and more"))
    assert encoder.done
    assert encoder.feed(TextDelta("ignored")) == b""
    raw += encoder.close()
    decoded = check_anthropic_sse(raw)
    text = "".join(e["delta"]["text"] for e in decoded if e["type"] == "content_block_delta")
    assert text == "Hello world "
    assert decoded[-2]["delta"] == {"stop_reason": "stop_sequence", "stop_sequence": "STOP"}
    body = encoder.final_body()
    assert body["content"] == [{"type": "text", "text": "Hello world "}]
    assert (body["stop_reason"], body["stop_sequence"]) == ("stop_sequence", "STOP")


def test_held_back_prefix_is_released_when_no_stop_sequence_follows() -> None:
    encoder = encoder_for(stop=["STOP"])
    raw = run(encoder, [TextDelta("almost ST"), TextDelta("OMP"), TextDelta(" ends ST"), finish()])
    decoded = check_anthropic_sse(raw)
    text = "".join(e["delta"]["text"] for e in decoded if e["type"] == "content_block_delta")
    assert text == "almost STOMP ends ST"
    assert decoded[-2]["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}


def test_stop_sequence_at_the_very_start_gives_an_empty_message() -> None:
    encoder = encoder_for(stop=["###"])
    raw = run(encoder, [TextDelta("### heading"), finish()])
    decoded = check_anthropic_sse(raw)
    assert [event["type"] for event in decoded] == ["message_start", "message_delta", "message_stop"]
    assert decoded[1]["delta"] == {"stop_reason": "stop_sequence", "stop_sequence": "###"}


def test_stop_sequence_after_a_tool_call_keeps_tool_use() -> None:
    encoder = encoder_for(stop=["END"], stream=False)
    for event in [ToolCall("c", "f", {}), TextDelta("x END y")]:
        encoder.feed(event)
    body = encoder.final_body()
    assert (body["stop_reason"], body["stop_sequence"]) == ("tool_use", None)


def test_stop_sequences_apply_to_text_only() -> None:
    encoder = encoder_for(stop=["STOP"], stream=False)
    for event in [ReasoningDelta("I will not STOP thinking"), TextDelta("fine"), finish()]:
        encoder.feed(event)
    assert not encoder.done
    assert encoder.final_body()["content"][0]["thinking"] == "I will not STOP thinking"


def test_error_after_the_200_is_an_error_event_and_ends_the_stream() -> None:
    encoder = encoder_for()
    raw = encoder.start()
    events = load_events("04-error-midstream")
    for event in events:
        raw += encoder.feed(event)
    assert encoder.done
    assert encoder.close() == b""
    assert encoder.ping() == b""
    decoded = check_anthropic_sse(raw, expect_error=True)
    assert decoded[-1] == {
        "type": "error",
        "error": {"type": "api_error", "message": "Command Code failed: Gateway request failed"},
    }
    with pytest.raises(FailedResponse):
        encoder.final_body()


@pytest.mark.parametrize(
    ("failure", "error_type"),
    [
        (UpstreamFailure(FailureKind.OVERLOADED, 529, "overloaded", "busy"), "overloaded_error"),
        (UpstreamFailure(FailureKind.WINDOW, 429, "RATE_LIMITED", "window"), "rate_limit_error"),
        (UpstreamFailure(FailureKind.TIMEOUT, 0, "upstream_timeout", "slow"), "timeout_error"),
        (classify_inband_error({"message": "Model not in plan: x", "statusCode": 402}), "permission_error"),
    ],
)
def test_fail_renders_the_anthropic_error_type(failure: UpstreamFailure, error_type: str) -> None:
    encoder = encoder_for()
    encoder.start()
    encoder.feed(TextDelta("partial"))
    (name, data), *_ = parse_sse(encoder.fail(failure))
    assert name == "error"
    assert json.loads(data)["error"]["type"] == error_type
    assert encoder.fail(failure) == b""  # only one error event


def test_ping_frame() -> None:
    encoder = encoder_for()
    assert encoder.ping() == PING == b'event: ping\ndata: {"type": "ping"}\n\n'
    assert parse_sse(PING) == [("ping", '{"type": "ping"}')]


def test_close_is_idempotent_and_final_body_closes() -> None:
    encoder = encoder_for(stream=False)
    encoder.feed(TextDelta("a"))
    body = encoder.final_body()  # without an explicit close()
    assert body["content"] == [{"type": "text", "text": "a"}]
    assert encoder.close() == b""
    assert encoder.feed(TextDelta("b")) == b""
    assert encoder.final_body() == body


def test_done_and_usage_properties() -> None:
    encoder = encoder_for()
    assert encoder.usage is None and not encoder.done
    encoder.feed(finish(input_tokens=5, output_tokens=2))
    assert encoder.usage == Usage(input_tokens=5, output_tokens=2)
    assert not encoder.done  # provider-metadata may still follow; the upstream ends the stream
    encoder.feed(ProviderMetadata({"gateway": {"cost": "0.1"}}))
    encoder.close()
    assert encoder.done


def test_error_event_fed_directly_is_rendered_as_failure() -> None:
    encoder = encoder_for()
    encoder.start()
    out = encoder.feed(ErrorEvent(classify_inband_error("boom")))
    assert parse_sse(out)[0][0] == "error"
    assert encoder.done


def test_empty_stream_is_a_valid_empty_message() -> None:
    raw = run(encoder_for(), [finish()])
    decoded = check_anthropic_sse(raw)
    assert [event["type"] for event in decoded] == ["message_start", "message_delta", "message_stop"]
    assert sdk_stream(raw).content == []


def test_text_is_json_escaped_in_frames() -> None:
    tricky = 'quote " backslash \\ newline \n\n event: fake\u2028 emoji 🎉'
    raw = run(encoder_for(), [TextDelta(tricky), finish()])
    decoded = check_anthropic_sse(raw)
    assert decoded[2]["delta"]["text"] == tricky
    assert sdk_stream(raw).content[0].text == tricky
