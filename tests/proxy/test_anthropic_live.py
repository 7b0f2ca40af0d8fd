"""/v1/messages and /v1/messages/count_tokens end to end: the real anthropic SDK (strict
validation) and raw sockets, through a live Daphne gateway to the simulator on loopback."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx
import pytest

from proxy.upstream.simulator.events import expected_usage
from proxy.upstream.simulator.scenarios import expected_reasoning, expected_text
from tests.golden import check_anthropic_sse

pytestmark = [pytest.mark.live]

MODEL = "deepseek/deepseek-v4-flash"
READ_FILE = {
    "name": "read_file",
    "description": "Read a file",
    "input_schema": {"type": "object", "properties": {"file_path": {"type": "string"}}},
}


@pytest.fixture
def sdk(live):
    with live.anthropic_client() as client:
        yield client


def ask(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def raw_stream(
    live, text: str, *, path: str = "/v1/messages", timeout: float = 10, headers=None, **body: Any
):
    """A streaming Messages request from a plain HTTP client, to see the exact bytes."""
    return httpx.stream(
        "POST",
        f"{live.url}{path}",
        headers={"x-api-key": live.key, **(headers or {})},
        json={"model": MODEL, "max_tokens": 100, "stream": True, "messages": ask(text), **body},
        timeout=timeout,
    )


def raw_post(live, text: str, **options: Any) -> httpx.Response:
    with raw_stream(live, text, **options) as response:
        response.read()
    return response


def uncached_input(usage: dict) -> int:
    details = usage["inputTokenDetails"]
    return usage["inputTokens"] - details["cacheReadTokens"] - details["cacheWriteTokens"]


def test_non_streaming_message_with_usage(sdk):
    message = sdk.messages.create(model=MODEL, max_tokens=256, system="Be brief.", messages=ask("hi"))
    assert [block.type for block in message.content] == ["text"]
    assert message.content[0].text == expected_text()
    assert message.stop_reason == "end_turn" and message.model == MODEL
    usage = expected_usage()
    assert message.usage.output_tokens == usage["outputTokens"]
    assert message.usage.input_tokens == uncached_input(usage)


def test_cached_input_is_not_counted_twice(sdk):
    message = sdk.messages.create(model=MODEL, max_tokens=256, messages=ask("[sim:cache-usage]"))
    usage = expected_usage("cache-usage")
    assert message.usage.cache_read_input_tokens == usage["inputTokenDetails"]["cacheReadTokens"]
    assert message.usage.cache_creation_input_tokens == usage["inputTokenDetails"]["cacheWriteTokens"]
    total = message.usage.input_tokens + message.usage.cache_read_input_tokens
    total += message.usage.cache_creation_input_tokens
    assert total == usage["inputTokens"]


def test_streaming_helper_with_thinking_and_signature_round_trip(sdk, live):
    with sdk.messages.stream(
        model=MODEL,
        max_tokens=1024,
        thinking={"type": "enabled", "budget_tokens": 4000},
        messages=ask("[sim:reasoning]"),
    ) as stream:
        final = stream.get_final_message()
    thinking, text = final.content
    assert thinking.type == "thinking" and thinking.thinking == expected_reasoning()
    assert thinking.signature and text.text == expected_text()
    # The client sends the signed thinking block back: it is accepted and goes upstream.
    follow_up = sdk.messages.create(
        model=MODEL,
        max_tokens=256,
        messages=ask("[sim:reasoning]")
        + [{"role": "assistant", "content": [block.model_dump() for block in final.content]}]
        + ask("and then?"),
    )
    assert follow_up.content[-1].text == expected_text()
    sent = live.sim_requests()[-1]["body"]["params"]["messages"]
    assert {"type": "reasoning", "text": expected_reasoning()} in sent[1]["content"]


def test_tool_use_streaming_and_not(sdk):
    message = sdk.messages.create(
        model=MODEL, max_tokens=256, messages=ask("[sim:tool-call]"), tools=[READ_FILE]
    )
    assert message.stop_reason == "tool_use"
    tool_use = [block for block in message.content if block.type == "tool_use"][0]
    assert tool_use.id == "call_sim_0_0" and tool_use.name == "read_file" and "file_path" in tool_use.input

    with sdk.messages.stream(
        model=MODEL, max_tokens=256, messages=ask("[sim:tool-calls]"), tools=[READ_FILE]
    ) as s:
        final = s.get_final_message()
    calls = [block for block in final.content if block.type == "tool_use"]
    assert [call.id for call in calls] == ["call_sim_0_0", "call_sim_0_1", "call_sim_0_2"]
    assert all(isinstance(call.input, dict) and call.input for call in calls)


def test_raw_sse_grammar_on_the_beta_path_with_x_api_key(live):
    betas = "interleaved-thinking-2025-05-14,some-future-beta-2099-01-01"
    response = raw_post(
        live,
        "[sim:tool-calls]",
        path="/v1/messages?beta=true",
        headers={"anthropic-version": "2023-06-01", "anthropic-beta": betas},
        tools=[READ_FILE],
    )
    assert response.status_code == 200
    events = check_anthropic_sse(response.content)
    assert events[0]["type"] == "message_start" and events[-1]["type"] == "message_stop"
    assert b"[DONE]" not in response.content


def test_stop_sequences_are_enforced(sdk, live):
    message = sdk.messages.create(
        model=MODEL, max_tokens=256, messages=ask("[sim:paced deltas=40 delay_ms=40]"), stop_sequences=["the"]
    )
    assert message.content[0].text == "Hello from "
    assert message.stop_reason == "stop_sequence" and message.stop_sequence == "the"


def test_count_tokens_is_biased_high(sdk):
    text = "word " * 400
    counted = sdk.messages.count_tokens(
        model=MODEL, messages=ask(text), system="Be brief.", tools=[READ_FILE]
    )
    assert counted.input_tokens >= 400


def test_count_tokens_learns_from_real_usage(sdk):
    model = "claude-haiku-4-5-20251001"  # calibration is per model; no other test uses this one

    def prompt(input_tokens: int) -> list[dict]:
        return ask(f"[sim:text input={input_tokens:06d}] " + "x" * 4000)

    before = sdk.messages.count_tokens(model=model, messages=prompt(0)).input_tokens
    actual = 2 * before  # the model's tokenizer turns out to need twice the estimate
    made = sdk.messages.create(model=model, max_tokens=64, messages=prompt(actual))
    assert made.usage.input_tokens == actual
    after = sdk.messages.count_tokens(model=model, messages=prompt(0)).input_tokens
    assert after >= actual


@pytest.mark.parametrize(
    ("scenario", "error", "status", "kind"),
    [
        ("http-403", anthropic.PermissionDeniedError, 403, "permission_error"),
        ("http-429", anthropic.RateLimitError, 429, "rate_limit_error"),
        ("http-529", anthropic.InternalServerError, 529, "overloaded_error"),
        ("http-500", anthropic.InternalServerError, 502, "api_error"),
    ],
)
def test_upstream_failures_become_anthropic_errors(sdk, live, scenario, error, status, kind):
    live.set_upstream_behaviour(scenario=scenario)
    with pytest.raises(error) as raised:
        sdk.messages.create(model=MODEL, max_tokens=64, messages=ask("hi"), stream=True)
    assert raised.value.status_code == status
    body = raised.value.response.json()
    assert body["type"] == "error" and body["error"]["type"] == kind and body["error"]["message"]
    assert live.upstream_key not in raised.value.response.text


def test_failure_after_output_is_an_error_event(live):
    response = raw_post(live, "[sim:truncate after=2]")
    assert response.status_code == 200
    check_anthropic_sse(response.content, expect_error=True)
    assert b"event: error" in response.content


def test_quiet_upstream_gets_ping_events(live):
    response = raw_post(live, "[sim:paced deltas=3 delay_ms=1300]", timeout=20)
    assert b"event: ping" in response.content
    check_anthropic_sse(response.content)


def test_client_disconnect_closes_the_upstream(live):
    with raw_stream(live, "[sim:stall after=1]") as response:
        assert response.status_code == 200
        next(response.iter_bytes())
    live.wait_for_outcome("disconnected")


def test_bad_input_is_a_400_in_the_anthropic_envelope(sdk):
    with pytest.raises(anthropic.BadRequestError) as raised:
        sdk.messages.create(model=MODEL, messages=ask("hi"), max_tokens=0)
    body = raised.value.response.json()
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    assert "max_tokens" in body["error"]["message"]


def test_bearer_auth_and_wrong_key(live):
    good = anthropic.Anthropic(base_url=live.url, auth_token=live.key, api_key=None, max_retries=0)
    assert (
        good.messages.create(model=MODEL, max_tokens=64, messages=ask("hi")).content[0].text
        == expected_text()
    )
    bad = anthropic.Anthropic(base_url=live.url, api_key="ccs_wrong", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError) as raised:
        bad.messages.create(model=MODEL, max_tokens=64, messages=ask("hi"))
    assert raised.value.response.json()["error"]["type"] == "authentication_error"


def test_a_two_turn_tool_loop_with_the_stream_helper(sdk, live):
    messages = ask("[sim:tool-calls]")
    with sdk.messages.stream(model=MODEL, max_tokens=256, messages=messages, tools=[READ_FILE]) as stream:
        first = stream.get_final_message()
    calls = [block for block in first.content if block.type == "tool_use"]
    messages.append({"role": "assistant", "content": [block.model_dump() for block in first.content]})
    messages.append(
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": call.id, "content": "ok", "is_error": i == 1}
                for i, call in enumerate(calls)
            ],
        }
    )
    with sdk.messages.stream(model=MODEL, max_tokens=256, messages=messages, tools=[READ_FILE]) as stream:
        second = stream.get_final_message()
    assert second.stop_reason == "end_turn" and second.content[0].text == expected_text("tool-calls")
    sent = live.sim_requests()[-1]["body"]["params"]["messages"]
    results = [part for message in sent for part in message["content"] if part["type"] == "tool-result"]
    assert [r["toolCallId"] for r in results] == [call.id for call in calls]
    assert [r["output"]["type"] for r in results] == ["text", "error-text", "text"]
