"""Responses request -> Command Code request: Codex-shaped items, tools, reasoning round trip."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from proxy.translate.errors import InvalidRequest
from proxy.translate.history import MISSING_RESULT_TEXT
from proxy.translate.reasoning_seal import open_sealed, seal
from proxy.translate.responses_in import ResponsesRequest, parse_responses_request
from tests.golden import FIXTURES, GOLDEN, assert_golden

REQUESTS = sorted((FIXTURES / "requests" / "responses").glob("*.json"))
KEY = bytes(range(32))


def parse(headers: dict[str, str] | None = None, *, previous=(), **body: Any) -> ResponsesRequest:
    body.setdefault("model", "deepseek-v4-flash")
    body.setdefault("input", "hi")
    return parse_responses_request(body, headers or {}, reasoning_key=KEY, previous=previous)


def params(**body: Any) -> dict[str, Any]:
    return parse(**body).upstream.params(default_max_tokens=64000)


def refused(**body: Any) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        parse(**body)
    assert caught.value.status == 400
    return caught.value


def summary(request: ResponsesRequest) -> dict[str, Any]:
    upstream = request.upstream
    return {
        "params": upstream.params(default_max_tokens=64000),
        "client_model": upstream.client_model,
        "session_hint": upstream.session_hint,
        "stream": request.stream,
        "store": request.store,
        "include_encrypted_reasoning": request.include_encrypted_reasoning,
        "reasoning_summary": request.reasoning_summary,
        "namespaced": {name: list(pair) for name, pair in request.namespaced.items()},
        "response_format": request.response_format.type if request.response_format else None,
    }


@pytest.mark.parametrize("path", REQUESTS, ids=lambda path: path.stem)
def test_client_requests_translate_to_golden_upstream_requests(request, path: Path):
    fixture = json.loads(path.read_text())
    translated = parse_responses_request(fixture["body"], fixture["headers"], reasoning_key=KEY)
    assert_golden(request, GOLDEN / "responses" / "requests" / f"{path.stem}.json", summary(translated))


def test_a_string_input_is_one_user_message_and_instructions_are_the_system():
    sent = params(input="hello", instructions="Be brief.")
    assert sent["messages"] == [{"role": "user", "content": [{"type": "text", "text": "hello"}]}]
    assert sent["system"] == "Be brief."


def test_developer_and_system_items_join_the_instructions_in_order():
    sent = params(
        instructions="first",
        input=[
            {"role": "developer", "content": "second"},
            {"type": "message", "role": "system", "content": [{"type": "input_text", "text": "third"}]},
            {"role": "user", "content": "go"},
        ],
    )
    assert sent["system"] == "first\n\nsecond\n\nthird"


def test_namespace_tools_are_flattened_and_hosted_tools_dropped():
    request = parse(
        tools=[
            {"type": "web_search"},
            {
                "type": "namespace",
                "name": "crm",
                "description": "CRM",
                "tools": [{"type": "function", "name": "find"}],
            },
            {"type": "function", "name": "shell", "parameters": {"type": "object", "properties": {}}},
        ]
    )
    assert [tool["name"] for tool in request.upstream.tools] == ["crm__find", "shell"]
    assert request.namespaced == {"crm__find": ("crm", "find")}


def test_a_namespaced_call_in_history_is_flattened_and_its_output_keeps_the_name():
    sent = params(
        input=[
            {"role": "user", "content": "go"},
            {"type": "function_call", "call_id": "c1", "namespace": "crm", "name": "find", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "found"},
        ]
    )
    call, result = sent["messages"][1]["content"][0], sent["messages"][2]["content"][0]
    assert call["toolName"] == "crm__find" and result["toolName"] == "crm__find"
    assert result["output"] == {"type": "text", "value": "found"}


def test_an_unanswered_call_gets_the_clis_missing_result():
    sent = params(
        input=[
            {"role": "user", "content": "go"},
            {"type": "function_call", "call_id": "c1", "name": "shell", "arguments": "{}"},
        ]
    )
    assert sent["messages"][-1]["content"][0]["output"]["value"] == MISSING_RESULT_TEXT


def test_sealed_reasoning_comes_back_as_reasoning_before_the_call():
    sealed = seal("I should list files.", KEY)
    sent = params(
        input=[
            {"role": "user", "content": "go"},
            {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": sealed},
            {"type": "function_call", "call_id": "c1", "name": "shell", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "a.txt"},
        ]
    )
    assistant = sent["messages"][1]
    assert assistant["role"] == "assistant"
    assert assistant["content"][0] == {"type": "reasoning", "text": "I should list files."}
    assert assistant["content"][1]["type"] == "tool-call"


@pytest.mark.parametrize(
    "content",
    ["gAAAAABforeign-openai-blob", seal("x", bytes(32)), None, 42],
    ids=["foreign", "other-key", "missing", "not-a-string"],  # a seal is random: no stable id
)
def test_foreign_tampered_or_missing_encrypted_reasoning_is_dropped(content):
    sent = params(
        input=[
            {"role": "user", "content": "go"},
            {
                "type": "reasoning",
                "id": "rs_1",
                "summary": [{"type": "summary_text", "text": "plain"}],
                "encrypted_content": content,
            },
            {"role": "assistant", "content": [{"type": "output_text", "text": "ok"}]},
            {"role": "user", "content": "again"},
        ]
    )
    assert [part["type"] for part in sent["messages"][1]["content"]] == ["text"]


def test_a_seal_is_authenticated_and_not_plain_text():
    sealed = seal("secret thoughts", KEY)
    assert "secret" not in sealed and open_sealed(sealed, KEY) == "secret thoughts"
    flipped = sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1]
    assert open_sealed(flipped, KEY) is None
    assert seal("same", KEY) != seal("same", KEY), "a fresh nonce per seal"


def test_previous_items_come_before_this_requests_input():
    previous = [
        {"type": "message", "role": "user", "content": "first"},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "one"}]},
    ]
    sent = params(previous=previous, input="second")
    assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "user"]
    assert sent["messages"][2]["content"][0]["text"] == "second"


def test_effort_is_snapped_and_summary_switches_the_reasoning_display():
    request = parse(model="deepseek/deepseek-v4-flash", reasoning={"effort": "low", "summary": "auto"})
    assert request.upstream.reasoning_effort == "high"  # the model's lowest level (§13)
    assert request.reasoning_summary is True
    assert parse(reasoning={"effort": "high"}).reasoning_summary is False


def test_prompt_cache_key_is_the_session_hint_unless_a_session_header_is_sent():
    assert parse(prompt_cache_key="conv-1").upstream.session_hint == "conv-1"
    assert parse({"session-id": "hdr"}, prompt_cache_key="conv-1").upstream.session_hint == "hdr"


def test_tool_choice_none_sends_no_tools_and_required_sends_any():
    shell = {"type": "function", "name": "shell"}
    assert parse(tools=[shell], tool_choice="none").upstream.tools == []
    assert parse(tools=[shell], tool_choice="required").upstream.tool_choice == {"type": "any"}


def test_store_defaults_to_true_as_at_openai():
    assert parse().store is True and parse(store=False).store is False


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": 7}, "input"),
        ({"model": ""}, "model"),
        ({"input": [{"type": "item_reference", "id": "x"}]}, "input[0].type"),
        ({"input": [{"type": "weird"}]}, "input[0].type"),
        ({"input": [{"role": "robot", "content": "x"}]}, "input[0].role"),
        (
            {"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]},
            "input[0].content[0].type",
        ),
        ({"tools": [{"type": "function", "name": "bad name!"}]}, "tools[0].name"),
        ({"tools": [{"type": "quantum"}]}, "tools[0].type"),
        ({"tool_choice": {"type": "function", "name": "nope"}}, "tool_choice"),
        ({"max_output_tokens": 0}, "max_output_tokens"),
        ({"temperature": 3}, "temperature"),
        ({"reasoning": {"effort": "huge"}}, "reasoning.effort"),
        ({"background": True}, "background"),
        ({"conversation": "conv_1"}, "conversation"),
        ({"include": ["message.output_text.logprobs"]}, "include"),
        ({"text": {"format": {"type": "json_schema", "name": "bad name"}}}, "text.format"),
        ({"stream": "yes"}, "stream"),
    ],
)
def test_bad_requests_are_refused_with_the_parameter_named(body, param):
    assert refused(**body).param == param


def test_input_images_become_upstream_images():
    png = (
        "data:image/png;base64,"
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
    )
    content = [{"type": "input_text", "text": "what is it?"}, {"type": "input_image", "image_url": png}]
    sent = params(model="deepseek/deepseek-v4-flash-vision-exp", input=[{"role": "user", "content": content}])
    image = sent["messages"][0]["content"][1]
    assert image["type"] == "image" and image["mimeType"] == "image/png"


def test_text_format_json_object_asks_for_json_in_the_system_text():
    request = parse(text={"format": {"type": "json_object"}})
    assert request.response_format is not None and request.response_format.type == "json_object"
    assert "JSON" in request.upstream.system
