"""The simulator's pure parts: directives, deterministic texts, scripts, validation, config."""

from __future__ import annotations

import copy
import json
from typing import Any

import orjson
import pytest

from proxy.upstream.simulator import scenarios as sc
from proxy.upstream.simulator.config import ConfigError, KeyBehaviour, config_from_dict, load_config
from proxy.upstream.simulator.errors import RequestRejected, scenario_error, usage_window_error
from proxy.upstream.simulator.events import StreamPlan, build_script, expected_usage, join_lines
from proxy.upstream.simulator.recorder import key_fingerprint, redact_headers
from proxy.upstream.simulator.select import default_tool, select
from proxy.upstream.simulator.validate import bearer_key, check_json_content_type, validate_envelope
from tests.upstream.test_simulator import envelope


def test_text_deltas_read_as_words_ending_in_a_full_stop():
    assert sc.expected_text() == "Hello from the simulator."
    assert sc.expected_text(deltas=1) == "Hello."
    assert sc.expected_text(deltas=0) == ""
    assert sc.expected_text(deltas=17).endswith("lima Hello.")
    assert sc.text_deltas(3) == ["Hello ", "from ", "the."]


@pytest.mark.parametrize(
    "selection", ["long deltas=300", "[sim:long deltas=300]", "  [sim: long  deltas=300 ]"]
)
def test_expected_text_takes_names_directive_bodies_and_directives(selection):
    assert sc.expected_text(selection) == sc.expected_text(deltas=300)
    assert len(sc.expected_text(selection).split()) == 300


def test_keyword_overrides_win_over_the_selection():
    assert sc.expected_text("long deltas=300", deltas=2) == "Hello from."


def test_cut_short_scenarios_expect_only_the_text_before_the_cut():
    assert sc.expected_text("truncate") == "Hello from "
    assert sc.expected_text("error-retryable") == "Hello "
    assert sc.expected_text("stall after=0") == ""
    assert sc.expected_text("http-500") == ""


def test_expected_usage_follows_the_documented_formula():
    usage = expected_usage("reasoning deltas=5 reasoning_deltas=2 input=10 cache_read=20 cache_write=30")

    assert usage is not None
    assert (usage["inputTokens"], usage["outputTokens"], usage["totalTokens"]) == (60, 7, 67)
    assert expected_usage("truncate") is None and expected_usage("http-402") is None


def test_tool_input_deltas_count_as_text_tokens():
    usage = expected_usage("tool-calls deltas=1 arg_deltas=4")

    assert usage is not None and usage["outputTokenDetails"]["textTokens"] == 1 + 3 * 4


def test_parse_selection_reads_name_and_typed_parameters():
    assert sc.parse_selection("[sim:tool-call deltas=3 tool=a,b retryable=false]") == (
        "tool-call",
        {"deltas": 3, "tool": "a,b", "retryable": False},
    )
    assert sc.parse_selection("delay_ms=5") == (None, {"delay_ms": 5})
    assert sc.parse_selection("") == (None, {})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("nonsense", "unknown simulator scenario"),
        ("text colour=red", "unknown simulator parameter"),
        ("text deltas=many", "must be an integer"),
        ("text deltas=-1", "out of range"),
        ("text deltas=100001", "out of range"),
        ("text deltas", "expected key=value"),
        ("http-429 window=monthly", "window must be one of"),
        ("text finish=done", "finish must be one of"),
        ("error-fatal retryable=maybe", "true or false"),
        ("http-200", "unknown simulator scenario"),
    ],
)
def test_parse_selection_rejects_mistakes_with_a_clear_message(text, message):
    with pytest.raises(sc.DirectiveError, match=message):
        sc.parse_selection(text)


def test_directive_is_found_anywhere_in_the_text_and_stripped_for_echo():
    text = "first line\nplease [sim:echo deltas=2] now"

    assert sc.find_directive(text) == "echo deltas=2"
    assert sc.echo_text(text) == "first line\nplease  now"
    assert sc.echo_text("[sim:echo]") == sc.ECHO_EMPTY


def test_generic_http_scenarios_and_scenario_models():
    assert sc.get_scenario("http-418").defaults == {"status": 418}
    assert sc.is_scenario_model("sim/tool-calls") and sc.is_scenario_model("sim/http-503")
    assert not sc.is_scenario_model("sim/unknown") and not sc.is_scenario_model("tool-calls")
    assert "sim/text" in sc.scenario_models()


def test_style_guide_scenario_names_are_aliases():
    assert sc.expected_text("text-only") == sc.expected_text()
    assert sc.get_scenario("error-midstream").kind == sc.INBAND_ERROR
    assert sc.get_scenario("error-midstream").defaults == sc.get_scenario("error-retryable").defaults


@pytest.mark.parametrize(
    ("declared", "tool"),
    [
        ([], "read_file"),
        (["get_weather", "read_file"], "read_file"),
        (["get_weather", "search"], "get_weather"),
    ],
)
def test_default_tool_prefers_read_file_then_the_first_declared_tool(declared, tool):
    assert default_tool([{"name": name} for name in declared]) == tool


@pytest.mark.parametrize(("length", "pieces"), [(10, 3), (3, 10), (1, 1), (100, 7)])
def test_split_text_gives_nearly_equal_non_empty_pieces(length, pieces):
    text = "abcdefghij" * (length // 10) + "x" * (length % 10)

    parts = sc.split_text(text, pieces)

    assert "".join(parts) == text and all(parts)
    assert len(parts) == min(pieces, length)
    assert max(map(len, parts)) - min(map(len, parts)) <= 1


STREAM_SCENARIOS = [name for name, s in sc.SCENARIOS.items() if s.kind not in (sc.HTTP, sc.STALL_HEADERS)]


@pytest.mark.parametrize("name", STREAM_SCENARIOS)
def test_every_stream_scenario_keeps_protocol_order(name):
    scenario = sc.get_scenario(name)
    script = build_script(StreamPlan(scenario.kind, sc.resolve_params(scenario), model="m"))

    events = [orjson.loads(line) for line in script.head + script.tail]
    kinds = [event["type"] for event in events]
    assert kinds[:2] == ["start", "start-step"]
    assert script.event_count == len(events) + (1 if script.finished else 0)
    if script.finished:
        # protocol §8.2: finish-step, finish, then provider-metadata after finish.
        assert kinds[-2:] == ["finish", "provider-metadata"] and script.finish_step is not None
        assert events[-2]["totalUsage"] == script.usage == script.finish_step["usage"]
    else:
        assert "finish" not in kinds
    assert all(line.endswith(b"\n") and line.count(b"\n") == 1 for line in script.head + script.tail)


def test_scripts_are_cached_per_plan():
    plan = StreamPlan(sc.TEXT, sc.SimParams(deltas=7), model="m")

    assert build_script(plan) is build_script(StreamPlan(sc.TEXT, sc.SimParams(deltas=7), model="m"))


def test_join_lines_packs_lines_into_chunks_without_losing_any():
    lines = tuple(b"x" * 100 + b"\n" for _ in range(2000))

    chunks = join_lines(lines, limit=10_000)

    assert b"".join(chunk for chunk, _ in chunks) == b"".join(lines)
    assert sum(count for _, count in chunks) == 2000 and len(chunks) == 20  # 100 lines of 101 bytes each


def test_minimal_peer_envelope_from_protocol_5_is_valid():
    minimal = {
        "config": {"workingDir": "/w", "date": "2026-11-22", "environment": "linux", "structure": []},
        "memory": None,
        "taste": None,
        "skills": None,
        "permissionMode": "standard",
        "threadId": "4725114e-b8c1-4245-9407-413c8423e973",
        "params": {
            "model": "deepseek/deepseek-v4-flash",
            "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
            "tools": [],
            "system": "Be brief.",
            "max_tokens": 1024,
            "stream": True,
        },
    }

    validate_envelope(minimal, is_known_model=lambda model: True)


def _with(path: str, value: Any) -> dict[str, Any]:
    body = copy.deepcopy(envelope())
    *parents, last = path.split(".")
    target = body
    for name in parents:
        target = target[int(name)] if name.isdigit() else target[name]
    key: Any = int(last) if last.isdigit() else last
    if value is _DELETE:
        del target[key]
    else:
        target[key] = value
    return body


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("memory", ""),  # 0.32.x and BRIDGE (protocol §5)
        ("config.environment", "linux-x64, Node.js v22.12.0"),
        ("params.system", " "),
        ("params.messages", [{"role": "user", "content": "plain string content"}]),
        ("params.tools", [{"type": "function", "name": "f", "description": "d", "input_schema": {}}]),
        ("params.reasoning_effort", "xhigh"),
        ("params.tool_choice", {"type": "tool", "name": "f"}),
        ("params.temperature", 0.2),
        ("params.top_p", 0.9),  # unknown params keys are ignored (WJF1)
        ("mode", "agent"),
        ("promptCache", "off"),
        ("threadId", _DELETE),
        ("permissionMode", _DELETE),
    ],
)
def test_variants_peers_send_are_accepted(path, value):
    validate_envelope(_with(path, value), is_known_model=lambda model: True)


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("config", _DELETE, "body.config: Invalid input: expected object, received undefined"),
        ("config", [], "body.config: Invalid input: expected object, received array"),
        ("config.isGitRepo", "no", "config.isGitRepo: Invalid input: expected boolean, received string"),
        ("config.structure", ["a", 1], "config.structure.1: Invalid input: expected string, received number"),
        ("memory", 0, "body.memory: Invalid input: expected string, received number"),
        ("permissionMode", "bypass", 'Invalid option: expected one of "standard"|"auto-accept"|"plan"'),
        ("mode", "chat", "body.mode: Invalid option"),
        ("threadId", "not-a-uuid", "body.threadId: Invalid UUID"),
        ("params", _DELETE, "body.params: Invalid input: expected object, received undefined"),
        ("params.model", _DELETE, "params.model: Invalid input: expected string, received undefined"),
        ("params.model", "", "params.model: Too small"),
        ("params.messages", [], "params.messages: Too small: expected array to have >=1 items"),
        ("params.messages.0.role", "system", "params.messages.0.role: Invalid option"),
        ("params.messages.0.content.0", {"type": "tool-call"}, "part 'tool-call' is not allowed in a user"),
        ("params.messages.0.content.0.text", 5, "params.messages.0.content.0.text: Invalid input"),
        ("params.tools", [{"name": "f"}], "params.tools.0.input_schema: Invalid input"),
        ("params.system", [{"type": "image"}], "params.system.0.type: Invalid option"),
        ("params.max_tokens", 200_001, "params.max_tokens: Too big: expected number to be <=200000"),
        ("params.max_tokens", 0, "params.max_tokens: Too small: expected number to be >=1"),
        ("params.max_tokens", 1.5, "params.max_tokens: Invalid input: expected int, received number"),
        ("params.stream", "yes", "params.stream: Invalid input: expected boolean"),
        ("params.tool_choice", {"type": "none"}, "params.tool_choice.type: Invalid option"),
        ("params.reasoning_effort", "minimal", "params.reasoning_effort: Invalid option"),
    ],
)
def test_invalid_envelopes_are_400_with_a_zod_style_message(path, value, message):
    with pytest.raises(RequestRejected) as caught:
        validate_envelope(_with(path, value), is_known_model=lambda model: True)

    assert caught.value.status == 400 and message in caught.value.message


def test_tool_result_without_its_call_is_rejected():
    orphan = [
        {"role": "user", "content": [{"type": "text", "text": "hi"}]},
        {
            "role": "tool",
            "content": [
                {"type": "tool-result", "toolCallId": "c1", "toolName": "f", "output": {"type": "text"}}
            ],
        },
    ]

    with pytest.raises(RequestRejected, match="unknown tool call 'c1'"):
        validate_envelope(_with("params.messages", orphan), is_known_model=lambda model: True)


def test_unknown_model_is_403_after_the_shape_checks():
    with pytest.raises(RequestRejected) as caught:
        validate_envelope(envelope(model="nope"), is_known_model=lambda model: False)

    assert (caught.value.status, caught.value.message) == (403, "Model/provider not recognized")


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("Bearer user_abc", True),
        ("Bearer  user_abc", False),
        ("bearer user_abc", False),
        ("Bearer org_x", False),
    ],
)
def test_bearer_key_needs_a_user_key(value, ok):
    if ok:
        assert bearer_key([(b"authorization", value.encode())]) == "user_abc"
    else:
        with pytest.raises(RequestRejected):
            bearer_key([(b"authorization", value.encode())])


def test_content_type_check_accepts_the_clis_duplicated_value():
    check_json_content_type([(b"content-type", b"application/json, application/json")])
    check_json_content_type([(b"content-type", b"application/json; charset=utf-8")])
    with pytest.raises(RequestRejected):
        check_json_content_type([])


def test_scenario_errors_follow_the_examples():
    assert scenario_error(sc.SimParams(status=402), model="claude-opus-5-5").message == (
        "Model not in plan: claude-opus-5-5"
    )
    window = usage_window_error("fiveHour", now=1_795_395_000).response()
    body = json.loads(window.body)
    assert body["error"]["rateLimit"] == {"window": "fiveHour", "reset": 1_795_395_000 + 5 * 3600}
    assert "Resets at 2026-11-23T05:50:00.000Z" in body["error"]["message"]
    assert (b"retry-after", b"18000") in window.headers


def test_selection_precedence_key_failure_then_key_then_directive_then_model():
    body = envelope("[sim:echo]", model="sim/long")
    flaky = KeyBehaviour(fail_first=1, fail_with="http-503", defaults="delay_ms=7")
    forced = KeyBehaviour(scenario="reasoning deltas=2")

    assert select(body, flaky, attempt=1, default="text").scenario.name == "http-503"
    second = select(body, flaky, attempt=2, default="text")
    assert (second.scenario.name, second.selected_by, second.params.delay_ms) == ("echo", "directive", 7)
    assert select(body, forced, attempt=1, default="text").params.deltas == 2
    assert select(envelope("hi", model="sim/long"), None, attempt=1, default="text").selected_by == "model"
    assert select(envelope("hi"), None, attempt=1, default="paced").scenario.name == "paced"


def test_bad_directive_in_a_request_is_a_400():
    with pytest.raises(RequestRejected, match="simulator directive: unknown simulator parameter"):
        select(envelope("[sim:text colour=red]"), None, attempt=1, default="text")


def test_config_from_dict_reads_key_behaviours():
    config = config_from_dict(
        {
            "keys": {"user_bad": {"scenario": "http-401"}, "user_flaky": {"fail_first": 2}},
            "accept_unknown_keys": False,
            "default_scenario": "reasoning deltas=2",
        }
    )

    assert config.keys["user_bad"].always_unauthorized
    assert config.keys["user_flaky"].fail_first == 2 and config.keys["user_flaky"].fail_with == "http-500"
    assert not config.accept_unknown_keys and config.default_scenario == "reasoning deltas=2"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"colour": 1}, "unknown configuration fields"),
        ({"keys": []}, "keys must be an object"),
        ({"keys": {"user_a": {"scenario": "nope"}}}, "unknown simulator scenario"),
        ({"keys": {"user_a": {"fail_first": -1}}}, "non-negative"),
        ({"keys": {"user_a": {"defaults": "text"}}}, "parameters only"),
        ({"keys": {"user_a": {"when": 1}}}, "unknown fields"),
        ({"default_scenario": "deltas=3"}, "scenario name first"),
    ],
)
def test_config_errors_say_what_to_fix(data, message):
    with pytest.raises(ConfigError, match=message):
        config_from_dict(data)


def test_load_config_reads_a_json_file(tmp_path):
    path = tmp_path / "sim.json"
    path.write_text(json.dumps({"keys": {"user_x": {"scenario": "http-402"}}}))

    assert load_config(path).keys["user_x"].scenario == "http-402"
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.json")


def test_secrets_never_reach_the_record():
    shown = redact_headers(
        [(b"Authorization", b"Bearer user_secret"), (b"x-api-key", b"k"), (b"accept", b"*/*")]
    )

    assert shown == [["Authorization", "[redacted]"], ["x-api-key", "[redacted]"], ["accept", "*/*"]]
    assert key_fingerprint("user_secret") == key_fingerprint("user_secret") != key_fingerprint("user_other")
    assert "secret" not in key_fingerprint("user_secret")
