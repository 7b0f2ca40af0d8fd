"""Chat Completions request -> Command Code request: every mapping, every refusal."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from proxy.translate.errors import InvalidRequest
from proxy.translate.history import MISSING_RESULT_TEXT
from proxy.translate.openai_in import DROPPED_FIELDS, ChatRequest, ResponseFormat, parse_chat_request
from tests.golden import FIXTURES, GOLDEN, assert_golden

REQUESTS = sorted((FIXTURES / "requests" / "openai").glob("*.json"))
PNG = (
    "data:image/png;base64,"
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)


def parse(headers: dict[str, str] | None = None, **body: Any) -> ChatRequest:
    body.setdefault("model", "deepseek-v4-flash")
    body.setdefault("messages", [{"role": "user", "content": "hi"}])
    return parse_chat_request(body, headers or {})


def params(**body: Any) -> dict[str, Any]:
    return parse(**body).upstream.params(default_max_tokens=64000)


def refused(**body: Any) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        parse(**body)
    assert caught.value.status == 400
    return caught.value


def summary(request: ChatRequest) -> dict[str, Any]:
    upstream = request.upstream
    return {
        "params": upstream.params(default_max_tokens=64000),
        "client_model": upstream.client_model,
        "stop_sequences": list(upstream.stop_sequences),
        "session_hint": upstream.session_hint,
        "stream": request.stream,
        "include_usage": request.include_usage,
        "response_format": dataclasses.asdict(request.response_format) if request.response_format else None,
        "model_info": request.model_info.id if request.model_info else None,
    }


@pytest.mark.parametrize("path", REQUESTS, ids=lambda path: path.stem)
def test_client_requests_translate_to_golden_upstream_requests(request, path: Path):
    fixture = json.loads(path.read_text())
    translated = parse_chat_request(fixture["body"], fixture["headers"])
    assert_golden(request, GOLDEN / "openai" / "requests" / f"{path.stem}.json", summary(translated))


def test_known_model_is_sent_as_its_canonical_id_and_echoed_as_sent():
    request = parse(model="DeepSeek-V4-Flash")
    assert request.upstream.model == "deepseek/deepseek-v4-flash"
    assert request.upstream.client_model == "DeepSeek-V4-Flash"
    assert request.model_info is not None and request.model_info.id == "deepseek/deepseek-v4-flash"


def test_unknown_model_passes_through_unchanged():
    request = parse(model="vendor/new-model-9")
    assert request.upstream.model == "vendor/new-model-9"
    assert request.model_info is None


def test_system_and_developer_messages_join_in_order_with_blank_lines():
    request = parse(
        messages=[
            {"role": "system", "content": "First."},
            {"role": "user", "content": "hi"},
            {"role": "developer", "content": "Second."},
            {
                "role": "system",
                "content": [{"type": "text", "text": "Third a."}, {"type": "text", "text": "b."}],
            },
        ]
    )
    assert request.upstream.system == "First.\n\nSecond.\n\nThird a.\n\nb."
    assert [message["role"] for message in request.upstream.messages] == ["user"]


def test_no_system_sends_the_placeholder_that_keeps_the_default_prompt_out():
    assert params()["system"] == " "


def test_user_text_and_image_parts_become_wire_parts():
    request = parse(
        model="kimi-k2.5",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "look"},
                    {"type": "image_url", "image_url": {"url": PNG}},
                ],
            }
        ],
    )
    content = request.upstream.messages[0]["content"]
    assert content[0] == {"type": "text", "text": "look"}
    assert content[1]["type"] == "image"
    assert content[1]["image"] == PNG and content[1]["mimeType"] == "image/png"


def test_remote_image_is_refused_unless_the_caller_allows_it():
    body = {
        "model": "kimi-k2.5",
        "messages": [
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x.test/a.png"}}]}
        ],
    }
    with pytest.raises(InvalidRequest) as caught:
        parse_chat_request(body, {})
    assert caught.value.param == "messages[0].content[0].image_url.url"
    assert caught.value.code == "image_url_not_allowed"
    allowed = parse_chat_request(body, {}, allow_remote_images=True)
    assert allowed.upstream.messages[0]["content"][0]["image"] == "https://x.test/a.png"


def test_image_to_a_text_only_model_is_a_400_naming_the_model():
    error = refused(
        model="deepseek-v4-flash",
        messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": PNG}}]}],
    )
    assert error.param == "model"
    assert "does not accept images" in error.message


def test_assistant_reasoning_comes_first_then_text_then_tool_calls():
    request = parse(
        messages=[
            {"role": "user", "content": "read it"},
            {
                "role": "assistant",
                "content": "Reading.",
                "reasoning_content": "I should read the file.",
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "read_file", "arguments": '{"path": "a.txt"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": [{"type": "text", "text": "line 1"}]},
        ]
    )
    assistant, tool = request.upstream.messages[1], request.upstream.messages[2]
    assert assistant["content"] == [
        {"type": "reasoning", "text": "I should read the file."},
        {"type": "text", "text": "Reading."},
        {"type": "tool-call", "toolCallId": "call_1", "toolName": "read_file", "input": {"path": "a.txt"}},
    ]
    assert tool == {
        "role": "tool",
        "content": [
            {
                "type": "tool-result",
                "toolCallId": "call_1",
                "toolName": "read_file",
                "output": {"type": "text", "value": "line 1"},
            }
        ],
    }


def test_consecutive_tool_messages_merge_into_one_tool_message():
    calls = [
        {"id": f"c{i}", "type": "function", "function": {"name": f"t{i}", "arguments": ""}} for i in (1, 2)
    ]
    request = parse(
        messages=[
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": None, "tool_calls": calls},
            {"role": "tool", "tool_call_id": "c1", "content": "one"},
            {"role": "tool", "tool_call_id": "c2", "content": "two"},
        ]
    )
    assistant, tool = request.upstream.messages[1:]
    assert [part["input"] for part in assistant["content"]] == [{}, {}]  # "" arguments mean none
    assert [(part["toolName"], part["output"]["value"]) for part in tool["content"]] == [
        ("t1", "one"),
        ("t2", "two"),
    ]


def test_unanswered_tool_call_gets_the_clis_synthetic_result_and_orphan_results_are_dropped():
    request = parse(
        messages=[
            {"role": "user", "content": "go"},
            {
                "role": "assistant",
                "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "t", "arguments": "{}"}}
                ],
            },
            {"role": "tool", "tool_call_id": "nobody", "content": "stray"},
            {"role": "user", "content": "never mind"},
        ]
    )
    roles = [message["role"] for message in request.upstream.messages]
    assert roles == ["user", "assistant", "tool", "user"]
    results = request.upstream.messages[2]["content"]
    assert len(results) == 1
    assert results[0]["toolCallId"] == "c1" and results[0]["output"]["value"] == MISSING_RESULT_TEXT


def test_assistant_refusal_is_replayed_as_text():
    request = parse(
        messages=[
            {"role": "user", "content": "x"},
            {"role": "assistant", "content": [{"type": "refusal", "refusal": "I can't."}]},
            {"role": "user", "content": "ok"},
        ]
    )
    assert request.upstream.messages[1]["content"] == [{"type": "text", "text": "I can't."}]


def test_max_completion_tokens_wins_over_max_tokens_and_is_capped_at_the_upstream_limit():
    assert params(max_tokens=100)["max_tokens"] == 100
    assert params(max_tokens=100, max_completion_tokens=200)["max_tokens"] == 200
    assert params(max_completion_tokens=10_000_000)["max_tokens"] == 200_000
    assert params()["max_tokens"] == 64000  # the gateway default


def test_temperature_is_forwarded_and_integer_zero_is_accepted():
    assert params(temperature=0)["temperature"] == 0
    assert params(temperature=1.5)["temperature"] == 1.5
    assert "temperature" not in params()


def test_sampling_fields_without_an_upstream_field_are_accepted_and_dropped():
    sent = params(top_p=0.5, seed=7, parallel_tool_calls=False, frequency_penalty=1, user="u1", store=True)
    assert set(sent) == {"model", "messages", "tools", "system", "max_tokens", "stream"}


def test_every_dropped_field_is_accepted_and_sends_nothing_upstream():
    values = {
        "top_p": 0.5,
        "frequency_penalty": 0.5,
        "presence_penalty": -0.5,
        "seed": 42,
        "logit_bias": {"50256": -100},
        "store": False,
        "metadata": {"team": "a"},
        "service_tier": "auto",
        "verbosity": "low",
        "safety_identifier": "user-hash",
        "moderation": None,
        "prompt_cache_options": {"ttl": "1h"},
        "prompt_cache_retention": "24h",
    }
    assert set(values) == set(DROPPED_FIELDS)
    assert params(**values) == params()


def test_stop_string_or_list_becomes_gateway_enforced_stop_sequences():
    assert parse(stop="END").upstream.stop_sequences == ("END",)
    assert parse(stop=["a", "", "b"]).upstream.stop_sequences == ("a", "b")
    assert parse(stop=None).upstream.stop_sequences == ()
    assert "stop" not in params(stop="END")  # the upstream ignores stop (§5)


FUNCTION = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        "strict": True,
    },
}
OTHER = {"type": "function", "function": {"name": "get_time"}}


def test_tools_become_upstream_definitions():
    assert params(tools=[FUNCTION, OTHER])["tools"] == [
        {
            "name": "get_weather",
            "description": "Weather for a city",
            "input_schema": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
        {"name": "get_time", "description": "", "input_schema": {"type": "object", "properties": {}}},
    ]


@pytest.mark.parametrize(
    ("choice", "tool_names", "upstream_choice"),
    [
        (None, ["get_weather", "get_time"], None),
        ("auto", ["get_weather", "get_time"], None),
        ("none", [], None),
        ("required", ["get_weather", "get_time"], {"type": "any"}),
        (
            {"type": "function", "function": {"name": "get_time"}},
            ["get_weather", "get_time"],
            {"type": "tool", "name": "get_time"},
        ),
        (
            {"type": "allowed_tools", "allowed_tools": {"mode": "required", "tools": [OTHER]}},
            ["get_time"],
            {"type": "any"},
        ),
        (
            {"type": "allowed_tools", "allowed_tools": {"mode": "auto", "tools": [FUNCTION]}},
            ["get_weather"],
            None,
        ),
    ],
)
def test_tool_choice_maps_to_the_upstream_form(choice, tool_names, upstream_choice):
    sent = params(tools=[FUNCTION, OTHER], tool_choice=choice)
    assert [tool["name"] for tool in sent["tools"]] == tool_names
    assert sent.get("tool_choice") == upstream_choice


@pytest.mark.parametrize(
    ("model", "effort", "expected"),
    [
        ("deepseek-v4-flash", "low", "high"),  # high,max only
        ("deepseek-v4-flash", "max", "max"),
        ("deepseek-v4-flash", "minimal", "high"),
        ("gpt-5.4-mini", "minimal", "low"),
        ("gpt-5.4-mini", "max", "high"),
        ("Qwen/Qwen3.8-Max", "high", "xhigh"),  # low,medium,xhigh: ties go up
        ("deepseek-v4-flash", "none", None),
        ("kimi-k2.5", "high", None),  # no effort list: never sent (§13)
        ("vendor/unknown", "medium", "medium"),
        ("vendor/unknown", "minimal", "low"),
    ],
)
def test_reasoning_effort_snaps_to_the_models_levels(model, effort, expected):
    assert params(model=model, reasoning_effort=effort).get("reasoning_effort") == expected


def test_json_schema_response_format_adds_a_json_instruction_to_the_system_prompt():
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    request = parse(
        messages=[
            {"role": "system", "content": "Be terse."},
            {"role": "user", "content": "capital of France?"},
        ],
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "City", "schema": schema, "strict": True},
        },
    )
    assert request.response_format == ResponseFormat("json_schema", name="City", schema=schema, strict=True)
    system = request.upstream.system
    assert isinstance(system, str)
    assert system.startswith("Be terse.\n\n")
    assert "'City'" in system and json.dumps(schema, separators=(",", ":")) in system
    assert "only the JSON" in system


def test_json_object_response_format_asks_for_an_object_and_text_asks_for_nothing():
    request = parse(response_format={"type": "json_object"})
    assert request.response_format == ResponseFormat("json_object")
    assert "JSON object" in request.upstream.system
    plain = parse(response_format={"type": "text"})
    assert plain.response_format is None and plain.upstream.system == ""


def test_session_hint_prefers_the_session_header_then_prompt_cache_key_then_user():
    assert parse({"x-session-id": "ses-1"}, prompt_cache_key="pck", user="u").upstream.session_hint == "ses-1"
    assert parse(prompt_cache_key="pck", user="u").upstream.session_hint == "pck"
    assert parse(user="u").upstream.session_hint == "u"
    assert parse().upstream.session_hint is None


def test_include_usage_only_applies_to_streams():
    assert parse(stream=True, stream_options={"include_usage": True}).include_usage is True
    assert parse(stream=False, stream_options={"include_usage": True}).include_usage is False
    assert parse(stream=True).include_usage is False
    assert parse(stream=True).upstream.stream is True


def test_user_content_may_be_a_plain_string_and_participant_names_are_dropped():
    request = parse(messages=[{"role": "user", "name": "ann", "content": "hello"}])
    assert request.upstream.messages == [{"role": "user", "content": [{"type": "text", "text": "hello"}]}]


USER = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(
    ("body", "param", "fragment"),
    [
        ({"messages": []}, "messages", "non-empty list"),
        ({"messages": None}, "messages", "non-empty list"),
        ({"messages": "hi"}, "messages", "non-empty list"),
        ({"messages": ["hi"]}, "messages[0]", "must be an object"),
        ({"messages": [{"role": "system", "content": ""}]}, "messages", "at least one message"),
        ({"messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role", "Unknown message role"),
        ({"messages": [{"role": "function", "name": "f", "content": "x"}]}, "messages[0].role", "deprecated"),
        ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content", "string or a list"),
        (
            {"messages": [{"role": "user", "content": [{"type": "video"}]}]},
            "messages[0].content[0].type",
            "Unknown",
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]},
            "messages[0].content[0].type",
            "not supported",
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "file", "file": {}}]}]},
            "messages[0].content[0].type",
            "not supported",
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "text", "text": 3}]}]},
            "messages[0].content[0].text",
            "string 'text'",
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]},
            "messages[0].content[0].image_url.url",
            "string 'url'",
        ),
        (
            {"messages": [{"role": "system", "content": [{"type": "image_url"}]}, *USER]},
            "messages[0].content[0].type",
            "expected text",
        ),
        (
            {
                "messages": [
                    *USER,
                    {
                        "role": "assistant",
                        "tool_calls": [
                            {"id": "c", "type": "function", "function": {"name": "t", "arguments": "{oops"}}
                        ],
                    },
                ]
            },
            "messages[1].tool_calls[0].function.arguments",
            "not valid JSON",
        ),
        (
            {
                "messages": [
                    *USER,
                    {
                        "role": "assistant",
                        "tool_calls": [
                            {"id": "c", "type": "function", "function": {"name": "t", "arguments": "[1]"}}
                        ],
                    },
                ]
            },
            "messages[1].tool_calls[0].function.arguments",
            "JSON object",
        ),
        (
            {
                "messages": [
                    *USER,
                    {"role": "assistant", "tool_calls": [{"type": "function", "function": {"name": "t"}}]},
                ]
            },
            "messages[1].tool_calls[0].id",
            "string 'id'",
        ),
        (
            {
                "messages": [
                    *USER,
                    {"role": "assistant", "tool_calls": [{"id": "c", "type": "custom", "custom": {}}]},
                ]
            },
            "messages[1].tool_calls[0].type",
            "function tool calls",
        ),
        ({"messages": [*USER, {"role": "assistant", "tool_calls": "x"}]}, "messages[1].tool_calls", "list"),
        (
            {"messages": [*USER, {"role": "assistant", "audio": {"id": "a"}}]},
            "messages[1].audio",
            "not supported",
        ),
        ({"messages": [*USER, {"role": "tool", "content": "x"}]}, "messages[1].tool_call_id", "tool_call_id"),
        ({"model": ""}, "model", "non-empty string"),
        ({"model": 4}, "model", "non-empty string"),
        ({"n": 2}, "n", "n=1"),
        ({"logprobs": True}, "logprobs", "Log probabilities"),
        ({"top_logprobs": 3}, "top_logprobs", "Log probabilities"),
        ({"audio": {"voice": "alloy", "format": "mp3"}}, "audio", "Audio"),
        ({"modalities": ["text", "audio"]}, "modalities", "'text'"),
        ({"prediction": {"type": "content", "content": "x"}}, "prediction", "Predicted"),
        ({"web_search_options": {}}, "web_search_options", "Web search"),
        ({"functions": [{"name": "f"}]}, "functions", "use 'tools'"),
        ({"function_call": "auto"}, "function_call", "use 'tools'"),
        ({"temperature": 2.5}, "temperature", "between 0 and 2"),
        ({"temperature": -0.1}, "temperature", "between 0 and 2"),
        ({"temperature": "hot"}, "temperature", "between 0 and 2"),
        ({"temperature": True}, "temperature", "between 0 and 2"),
        ({"top_p": 1.5}, "top_p", "between 0 and 1"),
        ({"presence_penalty": 3}, "presence_penalty", "between -2 and 2"),
        ({"max_tokens": 0}, "max_tokens", "positive integer"),
        ({"max_tokens": 1.5}, "max_tokens", "positive integer"),
        ({"max_completion_tokens": -3}, "max_completion_tokens", "positive integer"),
        ({"max_completion_tokens": True}, "max_completion_tokens", "positive integer"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop", "at most 4"),
        ({"stop": [1]}, "stop", "at most 4"),
        ({"stop": 7}, "stop", "at most 4"),
        ({"stream": "yes"}, "stream", "boolean"),
        ({"stream": True, "stream_options": "x"}, "stream_options", "object"),
        (
            {"stream": True, "stream_options": {"include_usage": "y"}},
            "stream_options.include_usage",
            "boolean",
        ),
        ({"parallel_tool_calls": "no"}, "parallel_tool_calls", "boolean"),
        ({"tools": {"type": "function"}}, "tools", "list of tools"),
        ({"tools": [{"type": "custom", "custom": {"name": "x"}}]}, "tools[0].type", "'function'"),
        ({"tools": [{"type": "function"}]}, "tools[0].function", "'function' object"),
        (
            {"tools": [{"type": "function", "function": {"name": "bad name!"}}]},
            "tools[0].function.name",
            "Tool names",
        ),
        (
            {"tools": [{"type": "function", "function": {"name": "t", "parameters": {"type": "array"}}}]},
            "tools[0].function.schema",
            "describe an object",
        ),
        ({"tools": [OTHER, OTHER]}, "tools", "unique"),
        ({"tool_choice": "required"}, "tool_choice", "at least one tool"),
        ({"tools": [OTHER], "tool_choice": "sometimes"}, "tool_choice", "must be 'auto'"),
        (
            {"tools": [OTHER], "tool_choice": {"type": "custom", "custom": {"name": "x"}}},
            "tool_choice",
            "must be",
        ),
        (
            {"tools": [OTHER], "tool_choice": {"type": "function", "function": {"name": "nope"}}},
            "tool_choice",
            "not in 'tools'",
        ),
        (
            {
                "tools": [OTHER],
                "tool_choice": {"type": "allowed_tools", "allowed_tools": {"mode": "x", "tools": []}},
            },
            "tool_choice",
            "mode",
        ),
        ({"reasoning_effort": "extreme"}, "reasoning_effort", "must be one of"),
        ({"response_format": {"type": "xml"}}, "response_format", "'json_schema'"),
        ({"response_format": "json"}, "response_format", "'json_schema'"),
        (
            {"response_format": {"type": "json_schema", "json_schema": {}}},
            "response_format.json_schema.name",
            "name",
        ),
        (
            {"response_format": {"type": "json_schema", "json_schema": {"name": "has space"}}},
            "response_format.json_schema.name",
            "1-64",
        ),
        (
            {"response_format": {"type": "json_schema", "json_schema": {"name": "n", "schema": []}}},
            "response_format.json_schema.schema",
            "must be an object",
        ),
    ],
)
def test_bad_requests_are_400s_naming_the_parameter(body, param, fragment):
    error = refused(**body)
    assert error.param == param
    assert fragment in error.message


def test_a_non_object_body_is_a_400():
    with pytest.raises(InvalidRequest) as caught:
        parse_chat_request(["not", "an", "object"], {})  # type: ignore[arg-type]
    assert "JSON object" in caught.value.message


def test_harmless_values_of_refusable_fields_are_accepted():
    request = parse(n=1, logprobs=False, top_logprobs=0, modalities=["text"], audio=None, prediction=None)
    assert request.upstream.messages[0]["content"] == [{"type": "text", "text": "hi"}]
