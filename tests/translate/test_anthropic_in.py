"""Anthropic Messages requests -> Command Code requests (pure: no DB, no event loop)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from proxy.translate import thinking
from proxy.translate.anthropic_content import SYSTEM_ITEM_CLOSE, SYSTEM_ITEM_OPEN
from proxy.translate.anthropic_in import (
    UPSTREAM_MAX_TOKENS,
    MessagesRequest,
    parse_count_tokens_request,
    parse_messages_request,
)
from proxy.translate.errors import InvalidRequest
from proxy.translate.history import MISSING_RESULT_TEXT
from tests.golden import FIXTURES, GOLDEN, assert_golden

KEY = b"test-thinking-key"
REQUESTS = FIXTURES / "requests" / "anthropic"
CASES = sorted(path.stem for path in REQUESTS.glob("*.json"))
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGBgAAAABQABpfZFQAAAAABJRU5ErkJggg=="


def parse(body: dict[str, Any], headers: dict[str, str] | None = None, **kwargs: Any) -> MessagesRequest:
    return parse_messages_request(body, headers or {}, thinking_key=KEY, **kwargs)


def body(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "model": "claude-sonnet-5",
        "max_tokens": 256,
        "messages": [{"role": "user", "content": "hello"}],
    }
    base.update(overrides)
    return base


def user(*blocks: Any) -> dict[str, Any]:
    return {"role": "user", "content": list(blocks)}


def assistant(*blocks: Any) -> dict[str, Any]:
    return {"role": "assistant", "content": list(blocks)}


def tool_use(call_id: str = "toolu_1", name: str = "shell", **arguments: Any) -> dict[str, Any]:
    return {"type": "tool_use", "id": call_id, "name": name, "input": arguments}


def tool_result(content: Any, call_id: str = "toolu_1", **extra: Any) -> dict[str, Any]:
    return {"type": "tool_result", "tool_use_id": call_id, "content": content, **extra}


def image(data: str = PNG) -> dict[str, Any]:
    return {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": data}}


def snapshot(request: MessagesRequest) -> dict[str, Any]:
    upstream = request.upstream
    return {
        "stream": request.stream,
        "client_model": upstream.client_model,
        "resolved_model": request.model_info.id if request.model_info else None,
        "session_hint": upstream.session_hint,
        "stop_sequences": list(upstream.stop_sequences),
        "params": upstream.params(64000),
    }


@pytest.mark.parametrize("case", CASES)
def test_request_golden(request: pytest.FixtureRequest, case: str) -> None:
    """Each client request shape translates to the reviewed upstream request."""
    client_body = json.loads((REQUESTS / f"{case}.json").read_text())
    parsed = parse(client_body, {"anthropic-version": "2023-06-01", "anthropic-beta": "anything-2099-01-01"})
    assert_golden(request, GOLDEN / "anthropic" / "requests" / f"{case}.json", snapshot(parsed))


def test_count_tokens_request_needs_no_max_tokens() -> None:
    parsed = parse_count_tokens_request(
        {"model": "claude-sonnet-5", "messages": [{"role": "user", "content": "hi"}]}, {}, thinking_key=KEY
    )
    assert parsed.upstream.max_tokens is None
    assert parsed.upstream.messages == [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]
    with pytest.raises(InvalidRequest) as info:
        parse(body(max_tokens=None))
    assert info.value.param == "max_tokens"


def test_count_tokens_still_validates_max_tokens_when_given() -> None:
    with pytest.raises(InvalidRequest):
        parse_count_tokens_request(body(max_tokens=0), {}, thinking_key=KEY)


def test_model_resolves_to_catalog_id_and_echoes_client_name() -> None:
    parsed = parse(body(model="Kimi-K2.5"))
    assert parsed.upstream.model == "moonshotai/Kimi-K2.5"
    assert parsed.upstream.client_model == "Kimi-K2.5"
    assert parsed.model_info is not None and parsed.model_info.id == "moonshotai/Kimi-K2.5"


def test_unknown_model_passes_through_unchanged() -> None:
    parsed = parse(body(model="vendor/brand-new-model"))
    assert parsed.upstream.model == "vendor/brand-new-model"
    assert parsed.model_info is None


def test_max_tokens_clamped_to_upstream_cap() -> None:
    assert parse(body(max_tokens=1_000_000)).upstream.max_tokens == UPSTREAM_MAX_TOKENS
    assert parse(body(max_tokens=128000)).upstream.max_tokens == 128000


def test_stream_flag() -> None:
    assert parse(body(stream=True)).stream is True
    assert parse(body(stream=True)).upstream.stream is True
    assert parse(body()).stream is False


def test_session_hint_prefers_header_then_metadata_user_id() -> None:
    with_meta = body(metadata={"user_id": "user-7"})
    assert parse(with_meta).upstream.session_hint == "user-7"
    headed = parse(with_meta, {"x-claude-code-session-id": "sess-1"})
    assert headed.upstream.session_hint == "sess-1"
    assert parse(body()).upstream.session_hint is None


def test_system_string_is_kept_as_string() -> None:
    assert parse(body(system="Be brief.")).upstream.system == "Be brief."


def test_system_blocks_keep_cache_control_and_get_section_newlines() -> None:
    system = [
        {"type": "text", "text": "one", "cache_control": {"type": "ephemeral", "ttl": "1h"}},
        {"type": "text", "text": ""},
        {"type": "text", "text": "two\n"},
        {"type": "text", "text": "three"},
    ]
    assert parse(body(system=system)).upstream.system == [
        {"type": "text", "text": "one\n", "cache_control": {"type": "ephemeral", "ttl": "1h"}},
        {"type": "text", "text": "two\n"},
        {"type": "text", "text": "three"},
    ]


def test_leading_system_item_joins_the_system_prompt() -> None:
    messages = [{"role": "system", "content": "Use metric units."}, {"role": "user", "content": "hi"}]
    parsed = parse(body(system="Be brief.", messages=messages))
    assert parsed.upstream.system == [
        {"type": "text", "text": "Be brief.\n"},
        {"type": "text", "text": "Use metric units."},
    ]
    assert parsed.upstream.messages == [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]


def test_system_item_mid_conversation_becomes_marked_user_text_in_place() -> None:
    messages = [
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "ok"},
        {"role": "system", "content": [{"type": "text", "text": "Now answer in French."}]},
        {"role": "user", "content": "second"},
    ]
    parsed = parse(body(messages=messages))
    marked = SYSTEM_ITEM_OPEN + "Now answer in French." + SYSTEM_ITEM_CLOSE
    assert parsed.upstream.messages[-1] == {
        "role": "user",
        "content": [{"type": "text", "text": marked}, {"type": "text", "text": "second"}],
    }
    assert parsed.upstream.system == ""


def test_system_item_between_tool_call_and_result_goes_after_the_results() -> None:
    """A system item must not separate a tool call from its result (the upstream pairs them)."""
    messages = [
        {"role": "user", "content": "go"},
        assistant(tool_use()),
        {"role": "system", "content": "Be careful."},
        user(tool_result("done"), {"type": "text", "text": "next"}),
    ]
    wire = parse(body(messages=messages, tools=[_tool("shell")])).upstream.messages
    assert [message["role"] for message in wire] == ["user", "assistant", "tool", "user"]
    assert wire[2]["content"][0]["output"] == {"type": "text", "value": "done"}
    assert wire[3]["content"][0]["text"].startswith(SYSTEM_ITEM_OPEN)
    assert wire[3]["content"][1] == {"type": "text", "text": "next"}


def test_trailing_system_item_ends_the_conversation_as_user_text() -> None:
    messages = [{"role": "user", "content": "hi"}, {"role": "system", "content": "Context: weekday."}]
    wire = parse(body(messages=messages)).upstream.messages
    assert wire == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "hi"},
                {"type": "text", "text": SYSTEM_ITEM_OPEN + "Context: weekday." + SYSTEM_ITEM_CLOSE},
            ],
        }
    ]


def test_tool_results_come_before_the_turns_text() -> None:
    messages = [
        {"role": "user", "content": "go"},
        assistant({"type": "text", "text": "calling"}, tool_use(command="ls")),
        user({"type": "text", "text": "after"}, tool_result("out")),
    ]
    wire = parse(body(messages=messages, tools=[_tool("shell")])).upstream.messages
    assert wire[1] == {
        "role": "assistant",
        "content": [
            {"type": "text", "text": "calling"},
            {"type": "tool-call", "toolCallId": "toolu_1", "toolName": "shell", "input": {"command": "ls"}},
        ],
    }
    assert wire[2] == {
        "role": "tool",
        "content": [
            {
                "type": "tool-result",
                "toolCallId": "toolu_1",
                "toolName": "shell",
                "output": {"type": "text", "value": "out"},
            }
        ],
    }
    assert wire[3] == {"role": "user", "content": [{"type": "text", "text": "after"}]}


def test_tool_result_is_error_becomes_error_text_and_blocks_join_with_newlines() -> None:
    content = [{"type": "text", "text": "line one"}, {"type": "text", "text": "line two"}]
    messages = [
        {"role": "user", "content": "go"},
        assistant(tool_use()),
        user(tool_result(content, is_error=True)),
    ]
    wire = parse(body(messages=messages)).upstream.messages
    assert wire[2]["content"][0]["output"] == {"type": "error-text", "value": "line one\nline two"}


def test_tool_result_without_content_is_empty_text() -> None:
    messages = [{"role": "user", "content": "go"}, assistant(tool_use()), user(tool_result(None))]
    wire = parse(body(messages=messages)).upstream.messages
    assert wire[2]["content"][0]["output"] == {"type": "text", "value": ""}


def test_tool_result_images_are_hoisted_into_the_following_user_turn() -> None:
    messages = [
        {"role": "user", "content": "shoot"},
        assistant(tool_use(name="shot")),
        user(tool_result([{"type": "text", "text": "captured"}, image()]), {"type": "text", "text": "and?"}),
    ]
    wire = parse(body(messages=messages)).upstream.messages
    assert wire[2]["content"][0]["output"]["value"] == "captured\n[image 1 attached below]"
    assert wire[3]["content"][0] == {"type": "text", "text": "[image 1]"}
    assert wire[3]["content"][1]["type"] == "image"
    assert wire[3]["content"][1]["image"] == f"data:image/png;base64,{PNG}"
    assert wire[3]["content"][2] == {"type": "text", "text": "and?"}


def test_tool_reference_in_a_result_reads_as_text() -> None:
    content = [{"type": "tool_reference", "tool_name": "Notebook"}]
    messages = [
        {"role": "user", "content": "find"},
        assistant(tool_use(name="search")),
        user(tool_result(content)),
    ]
    wire = parse(body(messages=messages)).upstream.messages
    assert wire[2]["content"][0]["output"]["value"] == "[tool available: Notebook]"


def test_unknown_tool_result_name_is_unknown_and_orphans_are_dropped() -> None:
    # The call id never appears earlier: the upstream rejects orphan results (protocol §14).
    messages = [
        {"role": "user", "content": "hi"},
        assistant({"type": "text", "text": "yo"}),
        user(tool_result("x")),
    ]
    wire = parse(body(messages=messages)).upstream.messages
    assert all(part["type"] != "tool-result" for message in wire for part in message["content"])


def test_dangling_tool_call_gets_the_cli_synthetic_result() -> None:
    messages = [
        {"role": "user", "content": "go"},
        assistant(tool_use()),
        {"role": "user", "content": "never mind"},
    ]
    wire = parse(body(messages=messages)).upstream.messages
    assert wire[2]["role"] == "tool"
    assert wire[2]["content"][0]["output"]["value"] == MISSING_RESULT_TEXT


def test_images_base64_and_data_url() -> None:
    data_url = {"type": "image", "source": {"type": "url", "url": f"data:image/png;base64,{PNG}"}}
    wire = parse(body(messages=[user(image(), data_url)])).upstream.messages
    assert [part["type"] for part in wire[0]["content"]] == ["image", "image"]
    assert wire[0]["content"][0] == wire[0]["content"][1]
    assert wire[0]["content"][0]["mimeType"] == "image/png"


def test_remote_image_url_refused_unless_fetching_is_enabled() -> None:
    remote = {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}}
    with pytest.raises(InvalidRequest) as info:
        parse(body(messages=[user(remote)]))
    assert info.value.code == "image_url_not_allowed"
    parsed = parse(body(messages=[user(remote)]), allow_remote_images=True)
    assert parsed.upstream.messages[0]["content"][0]["image"] == "https://example.com/cat.png"


def test_images_to_a_text_only_model_are_refused() -> None:
    with pytest.raises(InvalidRequest) as info:
        parse(body(model="deepseek-v4-flash", messages=[user(image())]))
    assert info.value.code == "model_not_vision_capable"


def test_plain_text_document_becomes_text() -> None:
    doc = {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "body"}}
    assert parse(body(messages=[user(doc)])).upstream.messages[0]["content"] == [
        {"type": "text", "text": "body"}
    ]


def test_signed_thinking_is_replayed_and_foreign_or_tampered_thinking_dropped() -> None:
    text = "Check the config first."
    signed = {"type": "thinking", "thinking": text, "signature": thinking.sign(text, KEY)}
    tampered = {"type": "thinking", "thinking": text + " Then delete it.", "signature": signed["signature"]}
    foreign = {"type": "thinking", "thinking": "elsewhere", "signature": "ErUBCkYIBRgCIkD0000"}
    other_key = {"type": "thinking", "thinking": text, "signature": thinking.sign(text, b"another-key")}
    reply = assistant(signed, tampered, foreign, other_key, {"type": "text", "text": "done"})
    messages = [{"role": "user", "content": "q"}, reply, {"role": "user", "content": "more"}]
    wire = parse(body(messages=messages)).upstream.messages
    assert wire[1]["content"] == [{"type": "reasoning", "text": text}, {"type": "text", "text": "done"}]


def test_redacted_thinking_and_server_tool_blocks_in_history_are_dropped() -> None:
    reply = assistant(
        {"type": "redacted_thinking", "data": "abc"},
        {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "x"}},
        {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []},
        {"type": "code_execution_tool_result", "tool_use_id": "srvtoolu_2", "content": {}},
        {"type": "text", "text": "answer"},
    )
    wire = parse(body(messages=[{"role": "user", "content": "q"}, reply])).upstream.messages
    assert wire[1]["content"] == [{"type": "text", "text": "answer"}]


def test_empty_text_blocks_are_dropped_and_empty_messages_vanish() -> None:
    messages = [
        user({"type": "text", "text": ""}, {"type": "text", "text": "real"}),
        assistant({"type": "text", "text": ""}),
    ]
    assert parse(body(messages=messages)).upstream.messages == [
        {"role": "user", "content": [{"type": "text", "text": "real"}]}
    ]


def test_adjacent_user_messages_merge() -> None:
    messages = [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]
    wire = parse(body(messages=messages)).upstream.messages
    assert wire == [
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}
    ]


def _tool(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "description": f"{name} tool",
        "input_schema": {"type": "object", "properties": {}},
        **extra,
    }


def test_tools_map_to_name_description_schema_and_ignore_hints() -> None:
    tools = [
        _tool("a", defer_loading=True, cache_control={"type": "ephemeral"}, strict=True),
        _tool("b", type="custom"),
    ]
    assert parse(body(tools=tools)).upstream.tools == [
        {"name": "a", "description": "a tool", "input_schema": {"type": "object", "properties": {}}},
        {"name": "b", "description": "b tool", "input_schema": {"type": "object", "properties": {}}},
    ]


def test_tool_search_server_tool_is_dropped_as_harmless() -> None:
    tools = [
        {"type": "tool_search_tool_regex_20251119", "name": "tool_search_tool_regex"},
        _tool("a", defer_loading=True),
    ]
    assert [tool["name"] for tool in parse(body(tools=tools)).upstream.tools] == ["a"]


@pytest.mark.parametrize(
    "tool_type",
    [
        "web_search_20250305",
        "code_execution_20250825",
        "bash_20250124",
        "text_editor_20250728",
        "mcp_toolset",
    ],
)
def test_server_and_builtin_tools_are_refused(tool_type: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        parse(body(tools=[{"type": tool_type, "name": "x"}]))
    assert info.value.param == "tools[0].type"
    assert tool_type in info.value.message


def test_tool_choice_mappings() -> None:
    tools = [_tool("a"), _tool("b")]
    assert parse(body(tools=tools, tool_choice={"type": "auto"})).upstream.tool_choice is None
    assert parse(body(tools=tools, tool_choice={"type": "any"})).upstream.tool_choice == {"type": "any"}
    chosen = parse(
        body(tools=tools, tool_choice={"type": "tool", "name": "b", "disable_parallel_tool_use": True})
    )
    assert chosen.upstream.tool_choice == {"type": "tool", "name": "b"}
    none = parse(body(tools=tools, tool_choice={"type": "none"}))
    assert none.upstream.tools == [] and none.upstream.tool_choice is None


@pytest.mark.parametrize(
    ("thinking_param", "output_config", "model", "expected"),
    [
        ({"type": "enabled", "budget_tokens": 1024}, None, "claude-sonnet-5", "low"),
        ({"type": "enabled", "budget_tokens": 8000}, None, "claude-sonnet-5", "medium"),
        ({"type": "enabled", "budget_tokens": 31999}, None, "claude-sonnet-5", "xhigh"),
        ({"type": "enabled", "budget_tokens": 64000}, None, "claude-sonnet-5", "max"),
        ({"type": "enabled", "budget_tokens": 4000}, None, "deepseek-v4-flash", "high"),
        ({"type": "adaptive"}, None, "claude-sonnet-5", "high"),
        ({"type": "adaptive", "display": "omitted"}, {"effort": "medium"}, "claude-sonnet-5", "medium"),
        ({"type": "enabled", "budget_tokens": 64000}, {"effort": "low"}, "claude-sonnet-5", "low"),
        (None, {"effort": "medium"}, "deepseek-v4-flash", "high"),
        (None, {"effort": "max"}, "gpt-5.4-mini", "high"),
        ({"type": "disabled"}, None, "claude-sonnet-5", None),
        (None, None, "claude-sonnet-5", None),
        ({"type": "enabled", "budget_tokens": 8000}, None, "claude-haiku-4-5", None),  # no effort list
        ({"type": "adaptive"}, None, "vendor/unknown", None),
    ],
)
def test_reasoning_effort(thinking_param: Any, output_config: Any, model: str, expected: str | None) -> None:
    extra: dict[str, Any] = {}
    if thinking_param is not None:
        extra["thinking"] = thinking_param
    if output_config is not None:
        extra["output_config"] = output_config
    assert parse(body(model=model, **extra)).upstream.reasoning_effort == expected


def test_sampling_stop_sequences_and_ignored_fields() -> None:
    parsed = parse(
        body(
            temperature=0.5,
            top_p=0.9,
            top_k=20,
            stop_sequences=["STOP", "", "STOP", "END"],
            context_management={"edits": []},
            service_tier="standard_only",
            container="cont_1",
        )
    )
    assert parsed.upstream.temperature == 0.5
    assert parsed.upstream.stop_sequences == ("STOP", "END")
    params = parsed.upstream.params(100)
    for dropped in ("top_p", "top_k", "stop_sequences", "context_management", "service_tier", "container"):
        assert dropped not in params


def test_input_is_not_mutated() -> None:
    client_body = json.loads((REQUESTS / "agent-loop.json").read_text())
    before = copy.deepcopy(client_body)
    parse(client_body)
    assert client_body == before


def _bad(**changes: Any) -> dict[str, Any]:
    return body(**changes)


@pytest.mark.parametrize(
    ("bad_body", "param"),
    [
        (_bad(model=""), "model"),
        (_bad(model=5), "model"),
        (_bad(max_tokens=0), "max_tokens"),
        (_bad(max_tokens=True), "max_tokens"),
        (_bad(max_tokens="100"), "max_tokens"),
        (_bad(messages=[]), "messages"),
        (_bad(messages="hi"), "messages"),
        (_bad(messages=[{"role": "system", "content": "only system"}]), "messages"),
        (_bad(messages=["hi"]), "messages[0]"),
        (_bad(messages=[{"role": "tool", "content": "x"}]), "messages[0].role"),
        (_bad(messages=[{"role": "user", "content": 5}]), "messages[0].content"),
        (_bad(messages=[user({"text": "no type"})]), "messages[0].content[0]"),
        (_bad(messages=[user({"type": "text", "text": 5})]), "messages[0].content[0].text"),
        (_bad(messages=[user({"type": "video"})]), "messages[0].content[0].type"),
        (
            _bad(messages=[user({"type": "search_result", "title": "t", "content": []})]),
            "messages[0].content[0].source",
        ),
        (_bad(messages=[user({"type": "container_upload", "file_id": "f"})]), "messages[0].content[0].type"),
        (
            _bad(messages=[user({"type": "tool_use", "id": "t", "name": "n", "input": {}})]),
            "messages[0].content[0].type",
        ),
        (
            _bad(
                messages=[
                    user(
                        {
                            "type": "document",
                            "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBER"},
                        }
                    )
                ]
            ),
            "messages[0].content[0].source",
        ),
        (
            _bad(messages=[user({"type": "image", "source": {"type": "file", "file_id": "f"}})]),
            "messages[0].content[0].source.type",
        ),
        (_bad(messages=[user(image("%%%not base64%%%"))]), "messages[0].content[0].source.data"),
        (
            _bad(
                messages=[
                    user(
                        {
                            "type": "image",
                            "source": {"type": "base64", "media_type": "image/bmp", "data": PNG},
                        }
                    )
                ]
            ),
            "messages[0].content[0].source.data",
        ),
        (_bad(messages=[user(tool_result("x", call_id=""))]), "messages[0].content[0].tool_use_id"),
        (_bad(messages=[user(tool_result(5))]), "messages[0].content[0].content"),
        (
            _bad(messages=[user(tool_result([{"type": "thinking", "thinking": "x"}]))]),
            "messages[0].content[0].content[0].type",
        ),
        (
            _bad(messages=[assistant({"type": "tool_use", "id": "", "name": "n", "input": {}})]),
            "messages[0].content[0].id",
        ),
        (
            _bad(messages=[assistant({"type": "tool_use", "id": "t", "name": "", "input": {}})]),
            "messages[0].content[0].name",
        ),
        (
            _bad(messages=[assistant({"type": "tool_use", "id": "t", "name": "n", "input": [1]})]),
            "messages[0].content[0].input",
        ),
        (
            _bad(messages=[assistant({"type": "thinking", "thinking": 5, "signature": "s"})]),
            "messages[0].content[0].thinking",
        ),
        (_bad(messages=[assistant(image())]), "messages[0].content[0].type"),
        (_bad(messages=[{"role": "system", "content": [image()]}]), "messages[0].content[0]"),
        (_bad(system=[{"type": "image"}]), "system[0]"),
        (_bad(system=5), "system"),
        (_bad(tools={"name": "x"}), "tools"),
        (_bad(tools=["x"]), "tools[0]"),
        (_bad(tools=[{"name": "bad name!", "input_schema": {"type": "object"}}]), "tools[0].name"),
        (_bad(tools=[{"name": "x", "input_schema": {"type": "string"}}]), "tools[0].schema"),
        (_bad(tools=[_tool("x"), _tool("x")]), "tools"),
        (_bad(tool_choice="auto"), "tool_choice"),
        (_bad(tool_choice={"type": "required"}), "tool_choice.type"),
        (_bad(tool_choice={"type": "any"}), "tool_choice"),
        (_bad(tools=[_tool("a")], tool_choice={"type": "tool", "name": "b"}), "tool_choice.name"),
        (_bad(thinking={"type": "enabled"}), "thinking.budget_tokens"),
        (_bad(thinking={"type": "enabled", "budget_tokens": -5}), "thinking.budget_tokens"),
        (_bad(thinking={"type": "sometimes"}), "thinking.type"),
        (_bad(thinking="on"), "thinking"),
        (_bad(output_config={"effort": "extreme"}), "output_config.effort"),
        (_bad(output_config={"effort": ["high"]}), "output_config.effort"),
        (_bad(output_config="high"), "output_config"),
        (_bad(output_config={"format": {"type": "json_schema", "schema": {}}}), "output_config.format"),
        (_bad(output_format={"type": "json_schema", "schema": {}}), "output_config.format"),
        (_bad(mcp_servers=[{"type": "url", "url": "https://mcp.example", "name": "m"}]), "mcp_servers"),
        (_bad(temperature=1.5), "temperature"),
        (_bad(temperature="hot"), "temperature"),
        (_bad(top_p=2), "top_p"),
        (_bad(top_k=-1), "top_k"),
        (_bad(stop_sequences="STOP"), "stop_sequences"),
        (_bad(stop_sequences=[1]), "stop_sequences"),
        (_bad(stop_sequences=["x" * 600]), "stop_sequences"),
        (_bad(stop_sequences=[f"s{i}" for i in range(65)]), "stop_sequences"),
        (_bad(stream="yes"), "stream"),
        (_bad(metadata="user"), "metadata"),
        (_bad(metadata={"user_id": 7}), "metadata.user_id"),
    ],
)
def test_invalid_requests_are_refused_with_the_offending_param(bad_body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        parse(bad_body)
    assert info.value.param == param
    assert info.value.status == 400
    assert info.value.message


def test_non_object_body_is_refused() -> None:
    with pytest.raises(InvalidRequest):
        parse_messages_request([], {}, thinking_key=KEY)  # type: ignore[arg-type]
