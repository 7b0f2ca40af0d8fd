"""Command Code events -> Responses events and objects (the ResponsesEncoder)."""

from __future__ import annotations

import json
from typing import Any

import pydantic
import pytest
from openai.types.responses import Response, ResponseStreamEvent

from proxy.translate.errors import FailedResponse
from proxy.translate.events import (
    ErrorEvent,
    Finish,
    ReasoningDelta,
    ReasoningStart,
    TextDelta,
    ToolCall,
    ToolInputDelta,
    ToolInputStart,
    UpstreamEvent,
    Usage,
)
from proxy.translate.failures import FailureKind, UpstreamFailure
from proxy.translate.reasoning_seal import open_sealed
from proxy.translate.responses_in import ResponsesRequest, parse_responses_request
from proxy.translate.responses_out import ResponsesEncoder
from tests.golden import GOLDEN, assert_golden, check_responses_sse
from tests.translate.test_openai_out import upstream_events

KEY = bytes(range(32))
STREAMS = (
    "01-text-only",
    "02-reasoning-then-text",
    "03-tool-call",
    "interleaved-reasoning-tool",
    "parallel-tool-calls-interleaved",
    "length-cutoff",
)
USAGE = Usage(input_tokens=10, cache_read_tokens=4, cache_write_tokens=1, output_tokens=5, reasoning_tokens=2)
FAILURE = UpstreamFailure(FailureKind.RETRYABLE, 503, "stream_error", "Gateway request failed")
EVENT = pydantic.TypeAdapter(ResponseStreamEvent)


def responses_request(*, stream: bool = True, **body: Any) -> ResponsesRequest:
    body.setdefault("model", "deepseek-v4-flash")
    body.setdefault("input", "hi")
    return parse_responses_request({"stream": stream, **body}, {}, reasoning_key=KEY)


def encoder(request: ResponsesRequest, **options: Any) -> ResponsesEncoder:
    return ResponsesEncoder(
        request,
        response_id="resp_0123456789abcdef",
        created_at=1_795_000_000,
        reasoning_key=KEY,
        clock=lambda: 1_795_000_009,
        **options,
    )


def stream_bytes(events: list[UpstreamEvent], **body: Any) -> bytes:
    enc = encoder(responses_request(stream=True, **body))
    out = enc.start()
    for event in events:
        out += enc.feed(event)
        if enc.done:
            break
    return out + enc.close()


def body_of(events: list[UpstreamEvent], **body: Any) -> dict[str, Any]:
    enc = encoder(responses_request(stream=False, **body))
    assert enc.start() == b""
    for event in events:
        assert enc.feed(event) == b"", "a non-streaming reply builds no frames"
    assert enc.close() == b""
    return enc.final_body()


def strictly_valid(decoded: list[dict[str, Any]]) -> None:
    """The openai SDK's own types as the oracle (as its strict response validation does)."""
    for event in decoded:
        parsed = EVENT.validate_python(event)
        assert parsed.type == event["type"]
        if "response" in event:
            Response.model_validate(event["response"], strict=False)


@pytest.mark.parametrize("summary", [True, False], ids=["summary", "reasoning-text"])
@pytest.mark.parametrize("name", STREAMS)
def test_example_streams_translate_to_golden_events(request, name, summary):
    reasoning = {"summary": "auto"} if summary else {}
    expect = "response.incomplete" if name == "length-cutoff" else "response.completed"
    raw = stream_bytes(
        upstream_events(name), reasoning=reasoning, tools=[{"type": "function", "name": "read_file"}]
    )
    decoded = check_responses_sse(raw, expect=expect)
    strictly_valid(decoded)
    suffix = "" if summary else "-reasoning-text"
    assert_golden(request, GOLDEN / "responses" / f"{name}{suffix}.sse", raw)


@pytest.mark.parametrize("name", STREAMS)
def test_example_streams_translate_to_golden_objects(request, name):
    body = body_of(upstream_events(name), reasoning={"summary": "auto"})
    Response.model_validate(body)
    assert_golden(request, GOLDEN / "responses" / f"{name}.json", body)


@pytest.mark.parametrize("name", STREAMS)
def test_the_stream_and_the_object_tell_the_same_story(name):
    events = upstream_events(name)
    streamed = check_responses_sse(
        stream_bytes(events),
        expect="response.incomplete" if name == "length-cutoff" else "response.completed",
    )[-1]["response"]
    body = body_of(events)
    assert streamed["output"] == body["output"] and streamed["usage"] == body["usage"]
    assert streamed["status"] == body["status"]


def test_text_deltas_join_into_the_message_and_usage_has_cache_details():
    decoded = check_responses_sse(
        stream_bytes([TextDelta("Hel"), TextDelta("lo"), Finish("stop", "stop", USAGE)])
    )
    deltas = [e["delta"] for e in decoded if e["type"] == "response.output_text.delta"]
    assert deltas == ["Hel", "lo"]
    final = decoded[-1]["response"]
    assert final["output"][0]["content"][0]["text"] == "Hello"
    assert final["usage"] == {
        "input_tokens": 10,
        "input_tokens_details": {"cached_tokens": 4, "cache_write_tokens": 1},
        "output_tokens": 5,
        "output_tokens_details": {"reasoning_tokens": 2},
        "total_tokens": 15,
    }
    assert final["status"] == "completed" and final["completed_at"] == 1_795_000_009


def test_encrypted_reasoning_only_when_included_and_it_opens_to_the_text():
    events = [
        ReasoningDelta("think "),
        ReasoningDelta("hard"),
        TextDelta("ok"),
        Finish("stop", "stop", USAGE),
    ]
    plain = body_of(events)
    assert "encrypted_content" not in plain["output"][0]
    sealed = body_of(events, include=["reasoning.encrypted_content"])["output"][0]["encrypted_content"]
    assert "think" not in sealed and open_sealed(sealed, KEY) == "think hard"


def test_interleaved_reasoning_parts_are_separate_summary_parts():
    events = [ReasoningStart(), ReasoningDelta("a"), ReasoningStart(), ReasoningDelta("b"), TextDelta("x")]
    body = body_of(events, reasoning={"summary": "auto"})
    assert [part["text"] for part in body["output"][0]["summary"]] == ["a", "b"]


def test_namespaced_calls_come_back_with_their_namespace():
    tools = [
        {
            "type": "namespace",
            "name": "crm",
            "description": "",
            "tools": [{"type": "function", "name": "find"}],
        }
    ]
    events = [ToolCall("call_1", "crm__find", {"q": "x"}), Finish("tool-calls", "tool_use", USAGE)]
    call = body_of(events, tools=tools)["output"][0]
    assert (call["namespace"], call["name"], call["call_id"]) == ("crm", "find", "call_1")
    assert json.loads(call["arguments"]) == {"q": "x"}


def test_arguments_cut_short_are_completed_and_done_carries_the_authoritative_text():
    events = [
        ToolInputStart("c1", "shell"),
        ToolInputDelta("c1", '{"cmd":'),
        ToolCall("c1", "shell", {"cmd": "ls"}),
        Finish("tool-calls", "tool_use", USAGE),
    ]
    decoded = check_responses_sse(stream_bytes(events))
    deltas = "".join(e["delta"] for e in decoded if e["type"] == "response.function_call_arguments.delta")
    done = next(e for e in decoded if e["type"] == "response.function_call_arguments.done")
    assert deltas == done["arguments"] == '{"cmd":"ls"}'


def test_length_finish_is_an_incomplete_response():
    body = body_of([TextDelta("partial"), Finish("length", "max_tokens", USAGE)])
    assert body["status"] == "incomplete"
    assert body["incomplete_details"] == {"reason": "max_output_tokens"}
    assert body["output"][0]["status"] == "incomplete"


def test_error_after_the_200_is_one_response_failed(request):
    enc = encoder(responses_request())
    raw = enc.start() + enc.feed(TextDelta("partial")) + enc.fail(FAILURE)
    assert enc.done and enc.close() == b"" and enc.fail(FAILURE) == b""
    decoded = check_responses_sse(raw, expect="response.failed")
    strictly_valid(decoded)
    failed = decoded[-1]["response"]
    assert failed["status"] == "failed" and failed["error"]["code"] == "server_error"
    assert_golden(request, GOLDEN / "responses" / "04-error-midstream.sse", raw)


def test_an_error_event_fed_to_the_encoder_renders_like_fail():
    enc = encoder(responses_request())
    raw = enc.start() + enc.feed(ErrorEvent(FAILURE))
    assert check_responses_sse(raw, expect="response.failed")[-1]["response"]["error"]["message"]


def test_failure_in_a_non_streaming_reply_raises_failed_response():
    enc = encoder(responses_request(stream=False))
    enc.feed(TextDelta("x"))
    enc.fail(FAILURE)
    with pytest.raises(FailedResponse):
        enc.final_body()


def test_json_format_with_non_json_text_fails_the_response():
    fmt = {"format": {"type": "json_schema", "name": "city", "schema": {"type": "object"}}}
    with pytest.raises(FailedResponse):
        body_of([TextDelta("not json"), Finish("stop", "stop", USAGE)], text=fmt)
    assert (
        body_of([TextDelta('{"name": "Oslo"}'), Finish("stop", "stop", USAGE)], text=fmt)["status"]
        == "completed"
    )
    raw = stream_bytes([TextDelta("nope"), Finish("stop", "stop", USAGE)], text=fmt)
    check_responses_sse(raw, expect="response.failed")


def test_completion_hands_the_output_to_the_store_only_when_stored():
    kept: list[list[dict[str, Any]]] = []
    events = [ReasoningDelta("r"), TextDelta("hi"), Finish("stop", "stop", USAGE)]
    for store in (True, False):
        enc = encoder(responses_request(store=store), on_complete=kept.append)
        for event in events:
            enc.feed(event)
        enc.close()
    assert len(kept) == 1
    assert open_sealed(kept[0][0]["encrypted_content"], KEY) == "r", "stored reasoning is always sealed"


def test_ping_is_an_sse_comment():
    assert encoder(responses_request()).ping().startswith(b":")
