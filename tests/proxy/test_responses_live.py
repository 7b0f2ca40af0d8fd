"""/v1/responses end to end: the real openai SDK (strict validation) and raw sockets, through a
live Daphne gateway to the simulator on loopback."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest

from proxy.upstream.simulator.events import expected_usage
from proxy.upstream.simulator.scenarios import expected_reasoning, expected_text
from tests.golden import check_responses_sse

pytestmark = [pytest.mark.live]

MODEL = "deepseek/deepseek-v4-flash"
READ_FILE = {
    "type": "function",
    "name": "read_file",
    "description": "Read a file",
    "parameters": {"type": "object", "properties": {"file_path": {"type": "string"}}},
    "strict": False,
}


@pytest.fixture
def sdk(live):
    with live.openai_client() as client:
        yield client


def raw_post(live, text: str, *, timeout: float = 10, **body: Any) -> httpx.Response:
    with httpx.stream(
        "POST",
        f"{live.url}/v1/responses",
        headers={"Authorization": f"Bearer {live.key}"},
        json={"model": MODEL, "input": text, "stream": True, **body},
        timeout=timeout,
    ) as response:
        response.read()
    return response


def test_create_returns_text_and_usage(sdk):
    response = sdk.responses.create(model=MODEL, input="hi", instructions="Be brief.")
    assert response.output_text == expected_text()
    assert response.status == "completed" and response.model == MODEL
    usage = expected_usage()
    assert response.usage.input_tokens == usage["inputTokens"]
    assert response.usage.output_tokens == usage["outputTokens"]
    assert response.usage.input_tokens_details.cached_tokens == usage["inputTokenDetails"]["cacheReadTokens"]


def test_stream_helper_accumulates_text_and_reasoning(sdk):
    with sdk.responses.stream(
        model=MODEL, input="[sim:reasoning]", reasoning={"effort": "high", "summary": "auto"}
    ) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert final.output_text == expected_text()
    reasoning = next(item for item in final.output if item.type == "reasoning")
    assert "".join(part.text for part in reasoning.summary) == expected_reasoning()
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    assert "response.reasoning_summary_text.delta" in kinds and "response.output_text.delta" in kinds


def test_function_calls_streaming_and_not(sdk):
    response = sdk.responses.create(model=MODEL, input="[sim:tool-call]", tools=[READ_FILE])
    call = next(item for item in response.output if item.type == "function_call")
    assert call.call_id == "call_sim_0_0" and call.name == "read_file"
    assert "file_path" in json.loads(call.arguments)

    with sdk.responses.stream(model=MODEL, input="[sim:tool-calls]", tools=[READ_FILE]) as stream:
        final = stream.get_final_response()
    calls = [item for item in final.output if item.type == "function_call"]
    assert [c.call_id for c in calls] == ["call_sim_0_0", "call_sim_0_1", "call_sim_0_2"]
    assert all(isinstance(json.loads(c.arguments), dict) for c in calls)


def test_a_tool_loop_sends_results_back_with_the_tool_name(sdk, live):
    first = sdk.responses.create(model=MODEL, input="[sim:tool-calls]", tools=[READ_FILE], store=False)
    calls = [item for item in first.output if item.type == "function_call"]
    history: list[Any] = [{"role": "user", "content": "[sim:tool-calls]"}]
    history += [item.model_dump(exclude_none=True) for item in first.output]
    history += [
        {"type": "function_call_output", "call_id": c.call_id, "output": f"body {c.call_id}"} for c in calls
    ]
    second = sdk.responses.create(model=MODEL, input=history, tools=[READ_FILE], store=False)
    assert second.output_text == expected_text("tool-calls")
    sent = live.sim_requests()[-1]["body"]["params"]["messages"]
    results = [part for message in sent for part in message["content"] if part["type"] == "tool-result"]
    assert [(r["toolCallId"], r["toolName"]) for r in results] == [(c.call_id, "read_file") for c in calls]


def test_previous_response_id_carries_the_conversation(sdk, live):
    first = sdk.responses.create(model=MODEL, input="[sim:tool-call]", tools=[READ_FILE])
    call = next(item for item in first.output if item.type == "function_call")
    second = sdk.responses.create(
        model=MODEL,
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "file body"}],
        tools=[READ_FILE],
    )
    assert second.previous_response_id == first.id and second.output_text == expected_text()
    sent = live.sim_requests()[-1]["body"]["params"]["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "tool"]
    assert sent[0]["content"][0]["text"] == "[sim:tool-call]"
    third = sdk.responses.create(model=MODEL, previous_response_id=second.id, input="and again?")
    assert third.output_text == expected_text()
    assert [m["role"] for m in live.sim_requests()[-1]["body"]["params"]["messages"]] == [
        "user",
        "assistant",
        "tool",
        "assistant",
        "user",
    ]


def test_previous_response_ids_are_not_shared_across_keys(sdk, live):
    first = sdk.responses.create(model=MODEL, input="hi")
    from tests.factories import make_client_key

    _, other_key = make_client_key()
    other = openai.OpenAI(base_url=f"{live.url}/v1", api_key=other_key, max_retries=0)
    with pytest.raises(openai.BadRequestError) as raised:
        other.responses.create(model=MODEL, input="hi", previous_response_id=first.id)
    assert raised.value.body["code"] == "previous_response_not_found"
    with pytest.raises(openai.BadRequestError):
        sdk.responses.create(model=MODEL, input="hi", previous_response_id="resp_never_made")


def test_unstored_responses_cannot_be_continued(sdk):
    first = sdk.responses.create(model=MODEL, input="hi", store=False)
    with pytest.raises(openai.BadRequestError):
        sdk.responses.create(model=MODEL, input="more", previous_response_id=first.id)


def test_encrypted_reasoning_round_trips_as_reasoning_upstream(sdk, live):
    first = sdk.responses.create(
        model=MODEL, input="[sim:reasoning]", include=["reasoning.encrypted_content"], store=False
    )
    reasoning = next(item for item in first.output if item.type == "reasoning")
    assert reasoning.encrypted_content and expected_reasoning() not in reasoning.encrypted_content
    history = [
        {"role": "user", "content": "[sim:reasoning]"},
        *[i.model_dump(exclude_none=True) for i in first.output],
    ]
    sdk.responses.create(model=MODEL, input=[*history, {"role": "user", "content": "next"}], store=False)
    assistant = live.sim_requests()[-1]["body"]["params"]["messages"][1]
    assert assistant["content"][0] == {"type": "reasoning", "text": expected_reasoning()}


def test_raw_stream_grammar_and_headers(live):
    response = raw_post(live, "[sim:tool-calls]", tools=[READ_FILE])
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    check_responses_sse(response.content)


def test_quiet_upstream_gets_keepalive_comments(live):
    response = raw_post(live, "[sim:paced deltas=3 delay_ms=1300]", timeout=20)
    assert b"\n: " in response.content or response.content.startswith(b": ")
    check_responses_sse(response.content)


def test_length_cutoff_is_response_incomplete(live):
    response = raw_post(live, "[sim:text finish=length]", max_output_tokens=16)
    events = check_responses_sse(response.content, expect="response.incomplete")
    assert events[-1]["response"]["incomplete_details"] == {"reason": "max_output_tokens"}


def test_failure_after_output_is_response_failed(live, sdk):
    response = raw_post(live, "[sim:truncate after=2]")
    assert response.status_code == 200
    failed = check_responses_sse(response.content, expect="response.failed")[-1]["response"]
    assert failed["status"] == "failed" and failed["error"]["message"]
    # The SDK hands response.failed to the caller as the last event, with the error on it.
    with sdk.responses.stream(model=MODEL, input="[sim:error-fatal after=2]") as stream:
        events = list(stream)
    assert events[-1].type == "response.failed" and events[-1].response.error.message
    assert [event.type for event in events].count("response.failed") == 1


@pytest.mark.parametrize(
    ("scenario", "error", "status"),
    [
        ("http-403", openai.PermissionDeniedError, 403),
        ("http-429", openai.RateLimitError, 429),
        ("http-500", openai.InternalServerError, 502),
        ("http-400", openai.BadRequestError, 400),
    ],
)
def test_upstream_failures_become_real_statuses(sdk, live, scenario, error, status):
    live.set_upstream_behaviour(scenario=scenario)
    with pytest.raises(error) as raised:
        sdk.responses.create(model=MODEL, input="hi", stream=True)
    assert raised.value.status_code == status
    body = raised.value.response.json()["error"]
    assert set(body) == {"message", "type", "param", "code"} and body["message"]
    assert live.upstream_key not in raised.value.response.text


def test_bad_input_and_bad_keys_are_sdk_exceptions(sdk, live):
    with pytest.raises(openai.BadRequestError) as raised:
        sdk.responses.create(model=MODEL, input=[{"type": "hologram"}])
    assert raised.value.body["param"] == "input[0].type"
    bad = openai.OpenAI(base_url=f"{live.url}/v1", api_key="ccs_wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.responses.create(model=MODEL, input="hi")
