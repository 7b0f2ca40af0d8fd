"""Command Code events -> Chat Completions chunks and bodies (the ChatEncoder)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest

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
from proxy.translate.failures import FailureKind, UpstreamFailure
from proxy.translate.openai_in import ChatRequest, parse_chat_request
from proxy.translate.openai_out import ChatEncoder
from tests.golden import FIXTURES, GOLDEN, assert_golden, check_openai_sse, parse_sse

# An excerpt of OpenAI's published OpenAPI description (MIT; see the LICENSE beside it).
SPEC = Path(__file__).resolve().parents[1] / "fixtures" / "openai-spec" / "chat-completions.json"
STREAMS = ("01-text-only", "02-reasoning-then-text", "03-tool-call")
USAGE = Usage(input_tokens=10, cache_read_tokens=4, output_tokens=5, reasoning_tokens=2)
FAILURE = UpstreamFailure(FailureKind.RETRYABLE, 503, "stream_error", "Gateway request failed")


def upstream_events(name: str) -> list[UpstreamEvent]:
    lines = (FIXTURES / "upstream" / f"{name}.ndjson").read_text().splitlines()
    events = [parse_event(json.loads(line)) for line in lines if line.strip()]
    return [event for event in events if event is not None]


def chat_request(*, stream: bool = True, **body: Any) -> ChatRequest:
    body.setdefault("model", "deepseek-v4-flash")
    body.setdefault("messages", [{"role": "user", "content": "hi"}])
    return parse_chat_request({"stream": stream, **body}, {})


def encoder(request: ChatRequest, **options: Any) -> ChatEncoder:
    return ChatEncoder(request, completion_id="chatcmpl-test", created=1_795_000_000, **options)


def _options(body: dict[str, Any]) -> dict[str, Any]:
    """Encoder options among the keyword arguments (the rest is the request body)."""
    options = {key: body.pop(key) for key in ("reasoning_content", "input_estimate") if key in body}
    if "allow_empty" in body:
        options["allow_empty_length"] = body.pop("allow_empty")
    return options


def stream_bytes(events: list[UpstreamEvent], **body: Any) -> bytes:
    options = _options(body)
    enc = encoder(chat_request(stream=True, **body), **options)
    out = enc.start()
    for event in events:
        out += enc.feed(event)
        if enc.done:
            break
    return out + enc.close()


def body_of(events: list[UpstreamEvent], **body: Any) -> dict[str, Any]:
    options = _options(body)
    enc = encoder(chat_request(stream=False, **body), **options)
    for event in events:
        assert enc.feed(event) == b"", "a non-streaming reply builds no frames"
        if enc.done:
            break
    assert enc.close() == b""
    return enc.final_body()


def content_of(chunks: list[dict[str, Any]]) -> str:
    return "".join(chunk["choices"][0]["delta"].get("content") or "" for chunk in chunks if chunk["choices"])


def finish_of(chunks: list[dict[str, Any]]) -> str:
    return next(
        c["choices"][0]["finish_reason"] for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]
    )


@pytest.mark.parametrize("name", STREAMS)
@pytest.mark.parametrize("include_usage", [True, False], ids=["usage", "no-usage"])
def test_example_streams_translate_to_golden_sse(request, name, include_usage):
    raw = stream_bytes(upstream_events(name), stream_options={"include_usage": include_usage})
    check_openai_sse(raw)
    suffix = "" if include_usage else "-no-usage"
    assert_golden(request, GOLDEN / "openai" / f"{name}{suffix}.sse", raw)


@pytest.mark.parametrize("name", STREAMS)
def test_example_streams_translate_to_golden_bodies(request, name):
    assert_golden(request, GOLDEN / "openai" / f"{name}.json", body_of(upstream_events(name)))


def test_text_stream_content_usage_and_terminator():
    raw = stream_bytes(upstream_events("01-text-only"), stream_options={"include_usage": True})
    events = parse_sse(raw)
    assert events[-1] == (None, "[DONE]")
    chunks = check_openai_sse(raw)
    assert content_of(chunks) == "Hi! How can I help with your code today?"
    assert finish_of(chunks) == "stop"
    assert {chunk["id"] for chunk in chunks} == {"chatcmpl-test"}
    assert {chunk["model"] for chunk in chunks} == {"deepseek-v4-flash"}  # the name the client sent
    usage_chunk = chunks[-1]
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"] == {
        "prompt_tokens": 2004,
        "completion_tokens": 11,
        "total_tokens": 2015,
        "prompt_tokens_details": {"cached_tokens": 1792},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }
    assert all("usage" not in chunk for chunk in chunks[:-1])
    assert all("system_fingerprint" not in chunk for chunk in chunks)


def test_without_include_usage_no_usage_chunk_is_sent():
    chunks = check_openai_sse(stream_bytes(upstream_events("01-text-only")))
    assert all(chunk["choices"] for chunk in chunks)
    assert all("usage" not in chunk for chunk in chunks)


def test_first_chunk_carries_the_role_and_an_empty_content():
    first = check_openai_sse(stream_bytes(upstream_events("01-text-only")))[0]
    assert first["choices"][0]["delta"] == {"role": "assistant", "content": ""}


def test_reasoning_streams_as_reasoning_content_before_the_text():
    chunks = check_openai_sse(stream_bytes(upstream_events("02-reasoning-then-text")))
    deltas = [chunk["choices"][0]["delta"] for chunk in chunks]
    reasoning = "".join(delta.get("reasoning_content", "") for delta in deltas)
    assert reasoning == "The user wants the sum of 17 and 25. 17 + 25 = 42."
    first_text = next(i for i, delta in enumerate(deltas) if delta.get("content"))
    last_reasoning = max(i for i, delta in enumerate(deltas) if "reasoning_content" in delta)
    assert last_reasoning < first_text
    assert content_of(chunks) == "17 + 25 = 42"


def test_reasoning_content_off_hides_reasoning_in_streams_and_bodies():
    events = upstream_events("02-reasoning-then-text")
    raw = stream_bytes(events, reasoning_content=False)
    assert b"reasoning_content" not in raw
    assert content_of(check_openai_sse(raw)) == "17 + 25 = 42"
    body = body_of(events, reasoning_content=False)
    assert "reasoning_content" not in body["choices"][0]["message"]
    assert body["choices"][0]["message"]["content"] == "17 + 25 = 42"
    assert body_of(events)["choices"][0]["message"]["reasoning_content"].startswith("The user wants")


def test_interleaved_reasoning_blocks_are_kept_apart_by_a_blank_line():
    events: list[UpstreamEvent] = [
        ReasoningStart(),
        ReasoningDelta("first"),
        ReasoningEnd(),
        TextDelta("a"),
        ReasoningStart(),
        ReasoningDelta("second"),
        ReasoningEnd(),
        Finish("stop", "stop", USAGE),
    ]
    assert body_of(events)["choices"][0]["message"]["reasoning_content"] == "first\n\nsecond"
    deltas = [c["choices"][0]["delta"] for c in check_openai_sse(stream_bytes(events))]
    assert "".join(delta.get("reasoning_content", "") for delta in deltas) == "first\n\nsecond"


def test_tool_call_streams_id_type_and_name_once_then_argument_fragments():
    chunks = check_openai_sse(stream_bytes(upstream_events("03-tool-call")))
    fragments = [call for chunk in chunks for call in chunk["choices"][0]["delta"].get("tool_calls", [])]
    assert fragments[0] == {
        "index": 0,
        "id": "call_7Qm2c9XkR1",
        "type": "function",
        "function": {"name": "read_file", "arguments": ""},
    }
    arguments = "".join(fragment["function"]["arguments"] for fragment in fragments)
    assert json.loads(arguments) == {"file_path": "/home/dev/app/package.json"}
    assert finish_of(chunks) == "tool_calls"


def test_tool_call_body_has_json_string_arguments_and_tool_calls_finish():
    body = body_of(upstream_events("03-tool-call"))
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] == "Let me look at the package manifest first."
    assert choice["message"]["tool_calls"] == [
        {
            "id": "call_7Qm2c9XkR1",
            "type": "function",
            "function": {"name": "read_file", "arguments": '{"file_path":"/home/dev/app/package.json"}'},
        }
    ]


def test_tool_call_without_any_text_has_null_content():
    events: list[UpstreamEvent] = [ToolCall("c1", "ls", {"path": "."}), Finish("tool-calls", None, USAGE)]
    message = body_of(events)["choices"][0]["message"]
    assert message["content"] is None
    assert message["tool_calls"][0]["function"] == {"name": "ls", "arguments": '{"path":"."}'}


def test_tool_call_without_input_events_is_emitted_whole():
    events: list[UpstreamEvent] = [ToolCall("c1", "ls", {"path": "."}), Finish("tool-calls", None, USAGE)]
    chunks = check_openai_sse(stream_bytes(events))
    (fragment,) = [call for chunk in chunks for call in chunk["choices"][0]["delta"].get("tool_calls", [])]
    assert fragment == {
        "index": 0,
        "id": "c1",
        "type": "function",
        "function": {"name": "ls", "arguments": '{"path":"."}'},
    }


def test_several_tool_calls_get_indices_in_order():
    events: list[UpstreamEvent] = [
        ToolInputStart("a", "one"),
        ToolInputDelta("a", "{}"),
        ToolCall("a", "one", {}),
        ToolCall("b", "two", {"x": 1}),
        Finish("tool-calls", None, USAGE),
    ]
    chunks = check_openai_sse(stream_bytes(events))
    fragments = [call for chunk in chunks for call in chunk["choices"][0]["delta"].get("tool_calls", [])]
    assert [(fragment["index"], fragment.get("id")) for fragment in fragments] == [
        (0, "a"),
        (0, None),
        (1, "b"),
    ]
    calls = body_of(events)["choices"][0]["message"]["tool_calls"]
    assert [call["id"] for call in calls] == ["a", "b"]


def test_interleaved_parallel_calls_keep_their_own_index():
    events: list[UpstreamEvent] = [
        ToolInputStart("a", "glob"),
        ToolInputStart("b", "grep"),
        ToolInputDelta("a", '{"p":'),
        ToolInputDelta("b", '{"q":1}'),
        ToolInputDelta("a", '"x"}'),
        ToolCall("b", "grep", {"q": 1}),
        ToolCall("a", "glob", {"p": "x"}),
        Finish("tool-calls", None, USAGE),
    ]
    chunks = check_openai_sse(stream_bytes(events))
    fragments = [call for chunk in chunks for call in chunk["choices"][0]["delta"].get("tool_calls", [])]
    by_index = {
        index: "".join(f["function"]["arguments"] for f in fragments if f["index"] == index)
        for index in (0, 1)
    }
    assert by_index == {0: '{"p":"x"}', 1: '{"q":1}'}
    calls = body_of(events)["choices"][0]["message"]["tool_calls"]
    assert [call["function"]["name"] for call in calls] == ["glob", "grep"]


def test_argument_fragments_of_a_call_never_started_for_the_client_are_dropped():
    # A provider-executed call's tool-input-start is filtered out upstream, its deltas are not.
    events: list[UpstreamEvent] = [
        ToolInputDelta("srv", '{"query":"x"}'),
        ToolCall("srv", "web_search", {"query": "x"}, provider_executed=True),
        TextDelta("done"),
        Finish("stop", "end_turn", USAGE),
    ]
    raw = stream_bytes(events)
    assert b"tool_calls" not in raw and b"query" not in raw
    assert finish_of(check_openai_sse(raw)) == "stop"


def test_streamed_arguments_cut_short_are_completed_from_the_final_tool_call():
    events: list[UpstreamEvent] = [
        ToolInputStart("c", "f"),
        ToolInputDelta("c", '{"a":'),
        ToolCall("c", "f", {"a": 1, "b": 2}),
        Finish("tool-calls", None, USAGE),
    ]
    chunks = check_openai_sse(stream_bytes(events))
    fragments = [call for chunk in chunks for call in chunk["choices"][0]["delta"].get("tool_calls", [])]
    assert "".join(fragment["function"]["arguments"] for fragment in fragments) == '{"a":1,"b":2}'


def test_streamed_arguments_that_differ_from_the_final_input_stand_and_the_body_uses_the_final_input():
    events: list[UpstreamEvent] = [
        ToolInputStart("c", "f"),
        ToolInputDelta("c", "{'a': 1}"),  # the model's raw (invalid) text
        ToolCall("c", "f", {"input": "{'a': 1}"}),
        Finish("tool-calls", None, USAGE),
    ]
    chunks = check_openai_sse(stream_bytes(events))
    fragments = [call for chunk in chunks for call in chunk["choices"][0]["delta"].get("tool_calls", [])]
    assert "".join(fragment["function"]["arguments"] for fragment in fragments) == "{'a': 1}"
    arguments = body_of(events)["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"]
    assert json.loads(arguments) == {"input": "{'a': 1}"}


def test_equivalent_streamed_arguments_send_nothing_more():
    events: list[UpstreamEvent] = [
        ToolInputStart("c", "f"),
        ToolInputDelta("c", '{ "a" : 1 }'),
        ToolCall("c", "f", {"a": 1}),
        Finish("tool-calls", None, USAGE),
    ]
    chunks = check_openai_sse(stream_bytes(events))
    fragments = [call for chunk in chunks for call in chunk["choices"][0]["delta"].get("tool_calls", [])]
    assert [fragment["function"]["arguments"] for fragment in fragments] == ["", '{ "a" : 1 }']


def test_provider_executed_tools_are_not_client_tool_calls():
    events: list[UpstreamEvent] = [
        ToolCall("srv", "web_search", {"q": "x"}, provider_executed=True),
        ToolResult("srv", "web_search", {"hits": []}),
        TextDelta("Found nothing."),
        Finish("stop", "stop", USAGE),
    ]
    chunks = check_openai_sse(stream_bytes(events))
    assert not any("tool_calls" in chunk["choices"][0]["delta"] for chunk in chunks)
    assert finish_of(chunks) == "stop"
    message = body_of(events)["choices"][0]["message"]
    assert "tool_calls" not in message and message["content"] == "Found nothing."


@pytest.mark.parametrize(
    ("finish", "expected"),
    [
        (Finish("stop", "stop", USAGE), "stop"),
        (Finish("length", "max_tokens", USAGE), "length"),
        (Finish("other", "max_output_tokens", USAGE), "length"),
        (Finish("content-filter", "content_filter", USAGE), "content_filter"),
        (Finish("tool-calls", "tool_calls", USAGE), "tool_calls"),
        (Finish("stop", "pause_turn", USAGE), "stop"),
        (Finish("other", None, USAGE), "stop"),
        (Abort("user"), "stop"),
    ],
)
def test_finish_reason_for_each_stop_kind(finish, expected):
    events: list[UpstreamEvent] = [TextDelta("x"), finish]
    assert finish_of(check_openai_sse(stream_bytes(events))) == expected
    assert body_of(events)["choices"][0]["finish_reason"] == expected


def test_tool_calls_force_the_tool_calls_finish_even_when_the_provider_says_stop():
    events: list[UpstreamEvent] = [ToolCall("c", "f", {}), Finish("stop", "stop", USAGE)]
    assert finish_of(check_openai_sse(stream_bytes(events))) == "tool_calls"


def test_stop_sequence_split_across_deltas_cuts_the_text_and_finishes_with_stop():
    events: list[UpstreamEvent] = [
        TextDelta("Hello EN"),
        TextDelta("D! and more"),
        TextDelta("never sent"),
        Finish("length", "max_tokens", USAGE),
    ]
    raw = stream_bytes(events, stop=["END!"])
    chunks = check_openai_sse(raw)
    assert content_of(chunks) == "Hello "
    assert finish_of(chunks) == "stop"
    assert b"never sent" not in raw and b"EN" not in raw
    body = body_of(events, stop=["END!"])
    assert body["choices"][0]["message"]["content"] == "Hello "
    assert body["choices"][0]["finish_reason"] == "stop"


def test_stop_sequence_match_marks_the_encoder_done():
    enc = encoder(chat_request(stop="STOP"))
    enc.start()
    assert not enc.done
    enc.feed(TextDelta("go ST"))
    assert not enc.done
    enc.feed(TextDelta("OP now"))
    assert enc.done
    assert enc.feed(TextDelta("more")) == b""


def test_text_held_back_for_a_possible_stop_sequence_is_sent_when_it_was_not_one():
    events: list[UpstreamEvent] = [TextDelta("abc EN"), Finish("stop", "stop", USAGE)]
    chunks = check_openai_sse(stream_bytes(events, stop=["END"]))
    assert content_of(chunks) == "abc EN"
    assert body_of(events, stop=["END"])["choices"][0]["message"]["content"] == "abc EN"


def test_held_back_text_goes_out_before_a_tool_call():
    events: list[UpstreamEvent] = [
        TextDelta("abc EN"),
        ToolCall("c", "f", {}),
        Finish("tool-calls", None, USAGE),
    ]
    chunks = check_openai_sse(stream_bytes(events, stop=["END"]))
    deltas = [chunk["choices"][0]["delta"] for chunk in chunks]
    text_at = next(i for i, delta in enumerate(deltas) if delta.get("content") == "EN")
    call_at = next(i for i, delta in enumerate(deltas) if "tool_calls" in delta)
    assert text_at < call_at


def test_non_streaming_body_usage_and_shape():
    body = body_of(
        [TextDelta("hi"), Finish("stop", "stop", USAGE), ProviderMetadata({"gateway": {"cost": "0"}})]
    )
    assert body == {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 1_795_000_000,
        "model": "deepseek-v4-flash",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "hi", "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": 10,
            "completion_tokens": 5,
            "total_tokens": 15,
            "prompt_tokens_details": {"cached_tokens": 4},
            "completion_tokens_details": {"reasoning_tokens": 2},
        },
    }


def test_usage_is_the_gateways_estimate_when_the_upstream_sent_none():
    enc = encoder(chat_request(stream=False), input_estimate=40)
    enc.feed(TextDelta("hello"))
    enc.feed(Abort(None))
    enc.close()
    assert enc.usage is None
    usage = enc.final_body()["usage"]
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == (40, 2)  # 5 chars / 2.5


def test_usage_property_reports_the_finish_usage():
    enc = encoder(chat_request())
    enc.feed(Finish("stop", "stop", USAGE))
    assert enc.usage == USAGE


def test_error_after_the_200_is_one_error_chunk_without_done(request):
    events = upstream_events("04-error-midstream")
    assert isinstance(events[-1], ErrorEvent)
    enc = encoder(chat_request())
    raw = enc.start() + b"".join(enc.feed(event) for event in events[:-1]) + enc.fail(events[-1].failure)
    assert enc.done
    assert enc.close() == b"", "nothing after the error chunk"
    chunks = check_openai_sse(raw, expect_error=True)
    assert chunks[-1] == {
        "error": {
            "message": "Command Code failed: Gateway request failed",
            "type": "server_error",
            "param": None,
            "code": "upstream_error",
        }
    }
    assert content_of(chunks[:-1]) == "Here is the first part of the answer"
    assert_golden(request, GOLDEN / "openai" / "04-error-midstream.sse", raw)


def test_an_error_event_fed_to_the_encoder_renders_like_fail():
    enc = encoder(chat_request())
    via_feed = enc.feed(ErrorEvent(FAILURE))
    assert via_feed == encoder(chat_request()).fail(FAILURE)
    assert enc.done and enc.close() == b""


def test_failure_in_a_non_streaming_reply_raises_failed_response():
    enc = encoder(chat_request(stream=False))
    enc.feed(TextDelta("partial"))
    assert enc.fail(FAILURE) == b""
    with pytest.raises(FailedResponse) as caught:
        enc.final_body()
    assert caught.value.error.error_class.openai_status == 502


def test_ping_is_an_sse_comment():
    ping = encoder(chat_request()).ping()
    assert ping.startswith(b":") and ping.endswith(b"\n\n")
    assert parse_sse(ping) == []


SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
JSON_SCHEMA = {"type": "json_schema", "json_schema": {"name": "City", "schema": SCHEMA, "strict": True}}


def test_json_schema_valid_output_passes_in_both_modes():
    events: list[UpstreamEvent] = [
        TextDelta('{"city":'),
        TextDelta(' "Paris"}'),
        Finish("stop", "stop", USAGE),
    ]
    body = body_of(events, response_format=JSON_SCHEMA)
    assert json.loads(body["choices"][0]["message"]["content"]) == {"city": "Paris"}
    chunks = check_openai_sse(stream_bytes(events, response_format=JSON_SCHEMA))
    assert json.loads(content_of(chunks)) == {"city": "Paris"}


def test_json_schema_invalid_output_is_a_failed_response_not_an_answer():
    events: list[UpstreamEvent] = [TextDelta("The capital is Paris."), Finish("stop", "stop", USAGE)]
    with pytest.raises(FailedResponse) as caught:
        body_of(events, response_format=JSON_SCHEMA)
    error = caught.value.error
    assert error.code == "invalid_json_output"
    assert error.error_class.openai_status == 502
    assert "'City'" in error.message


def test_json_schema_invalid_output_ends_a_stream_with_an_error_chunk_instead_of_a_finish(request):
    events: list[UpstreamEvent] = [TextDelta("The capital is Paris."), Finish("stop", "stop", USAGE)]
    raw = stream_bytes(events, response_format=JSON_SCHEMA, stream_options={"include_usage": True})
    chunks = check_openai_sse(raw, expect_error=True)
    assert chunks[-1]["error"]["code"] == "invalid_json_output"
    assert not any(chunk.get("choices") and chunk["choices"][0]["finish_reason"] for chunk in chunks[:-1])
    assert_golden(request, GOLDEN / "openai" / "json-schema-invalid.sse", raw)


def test_json_object_mode_requires_an_object():
    events: list[UpstreamEvent] = [TextDelta("[1, 2]"), Finish("stop", "stop", USAGE)]
    with pytest.raises(FailedResponse):
        body_of(events, response_format={"type": "json_object"})
    ok: list[UpstreamEvent] = [TextDelta('{"a": [1, 2]}'), Finish("stop", "stop", USAGE)]
    assert (
        body_of(ok, response_format={"type": "json_object"})["choices"][0]["message"]["content"]
        == '{"a": [1, 2]}'
    )


def test_a_body_is_unwrapped_from_a_json_code_fence():
    events: list[UpstreamEvent] = [
        TextDelta('```json\n{"city": "Paris"}\n```'),
        Finish("stop", "stop", USAGE),
    ]
    content = body_of(events, response_format=JSON_SCHEMA)["choices"][0]["message"]["content"]
    assert content == '{"city": "Paris"}'


def test_a_truncated_json_answer_keeps_its_length_finish():
    events: list[UpstreamEvent] = [TextDelta('{"city": "Pa'), Finish("length", "max_tokens", USAGE)]
    body = body_of(events, response_format=JSON_SCHEMA)
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["choices"][0]["message"]["content"] == '{"city": "Pa'
    assert finish_of(check_openai_sse(stream_bytes(events, response_format=JSON_SCHEMA))) == "length"


def test_json_schema_tool_call_turn_is_not_checked_as_json():
    events: list[UpstreamEvent] = [ToolCall("c", "f", {}), Finish("tool-calls", None, USAGE)]
    assert body_of(events, response_format=JSON_SCHEMA)["choices"][0]["finish_reason"] == "tool_calls"


@cache
def openapi_schemas() -> dict[str, Any]:
    return json.loads(SPEC.read_text())["components"]["schemas"]


_TYPES = {
    "object": dict,
    "array": list,
    "string": str,
    "integer": int,
    "number": (int, float),
    "boolean": bool,
    "null": type(None),
}


def schema_errors(value: Any, schema: dict[str, Any], path: str = "$") -> list[str]:
    """A small validator for the OpenAPI subset these schemas use (no jsonschema dependency)."""
    if "$ref" in schema:
        return schema_errors(value, openapi_schemas()[schema["$ref"].rsplit("/", 1)[-1]], path)
    if value is None and schema.get("nullable"):
        return []
    for key in ("anyOf", "oneOf"):
        if key in schema and all(schema_errors(value, option, path) for option in schema[key]):
            return [f"{path}: matches no {key} option"]
    errors = [error for part in schema.get("allOf", []) for error in schema_errors(value, part, path)]
    kind = schema.get("type")
    if kind is not None:
        expected = _TYPES[kind]
        if not isinstance(value, expected) or (isinstance(value, bool) and kind not in ("boolean",)):
            return [*errors, f"{path}: expected {kind}, got {value!r}"]
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: {value!r} not in {schema['enum']}")
    if isinstance(value, dict):
        errors += [f"{path}: missing {key}" for key in schema.get("required", []) if key not in value]
        for key, child in schema.get("properties", {}).items():
            if key in value:
                errors += schema_errors(value[key], child, f"{path}.{key}")
    if isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            errors += schema_errors(item, schema["items"], f"{path}[{index}]")
    return errors


def test_the_validator_catches_a_missing_required_key():
    schema = {"$ref": "#/components/schemas/CreateChatCompletionResponse"}
    body = body_of([TextDelta("hi"), Finish("stop", "stop", USAGE)])
    del body["choices"][0]["message"]["refusal"]
    assert schema_errors(body, schema) == ["$.choices[0].message: missing refusal"]


@pytest.mark.parametrize("name", STREAMS)
def test_bodies_match_the_openapi_response_schema(name):
    body = body_of(upstream_events(name))
    assert schema_errors(body, {"$ref": "#/components/schemas/CreateChatCompletionResponse"}) == []


@pytest.mark.parametrize("name", STREAMS)
def test_chunks_match_the_openapi_stream_schema(name):
    chunks = check_openai_sse(stream_bytes(upstream_events(name), stream_options={"include_usage": True}))
    schema = {"$ref": "#/components/schemas/CreateChatCompletionStreamResponse"}
    assert [error for chunk in chunks for error in schema_errors(chunk, schema)] == []


LENGTH_FINISH = Finish("length", "max_tokens", USAGE)


def test_a_length_finish_without_any_output_is_an_empty_success_by_default():
    raw = stream_bytes([ReasoningDelta("thinking..."), LENGTH_FINISH], max_tokens=50)
    assert b'"finish_reason":"length"' in raw and raw.endswith(b"data: [DONE]\n\n")
    choice = body_of([ReasoningDelta("thinking..."), LENGTH_FINISH])["choices"][0]
    assert choice["finish_reason"] == "length" and choice["message"]["content"] == ""


def test_a_length_finish_without_any_output_fails_closed_in_a_stream_when_set():
    raw = stream_bytes([ReasoningDelta("thinking..."), LENGTH_FINISH], max_tokens=50, allow_empty=False)
    assert b'"code":"empty_output_at_length"' in raw and b"max_tokens (50)" in raw
    assert b'"finish_reason":"length"' not in raw and not raw.endswith(b"data: [DONE]\n\n")


def test_a_length_finish_without_any_output_fails_closed_in_a_body_when_set():
    with pytest.raises(FailedResponse) as raised:
        body_of([ReasoningDelta("thinking..."), LENGTH_FINISH], allow_empty=False)
    assert raised.value.error.code == "empty_output_at_length"
    assert raised.value.error.error_class.openai_status == 502
    assert raised.value.error.headers() == {"x-should-retry": "false"}


def test_a_length_finish_after_some_text_is_a_normal_length_finish():
    assert body_of([TextDelta("partial"), LENGTH_FINISH])["choices"][0]["finish_reason"] == "length"


def test_the_setting_allows_an_empty_length_success():
    enc = encoder(chat_request(stream=False), allow_empty_length=True)
    enc.feed(LENGTH_FINISH)
    enc.close()
    choice = enc.final_body()["choices"][0]
    assert choice["finish_reason"] == "length" and choice["message"]["content"] == ""
