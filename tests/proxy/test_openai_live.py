"""/v1/chat/completions end to end: the real openai SDK (strict validation) and raw sockets,
through a live Daphne gateway to the simulator on loopback."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import openai
import pytest

from proxy.upstream.simulator.events import expected_usage
from proxy.upstream.simulator.scenarios import expected_reasoning, expected_text
from tests.golden import check_openai_sse

pytestmark = [pytest.mark.live]

MODEL = "deepseek/deepseek-v4-flash"
READ_FILE = {
    "type": "function",
    "function": {
        "name": "read_file",
        "description": "Read a file",
        "parameters": {"type": "object", "properties": {"file_path": {"type": "string"}}},
    },
}


@pytest.fixture
def sdk(live):
    with live.openai_client() as client:
        yield client


def ask(text: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": "Be brief."}, {"role": "user", "content": text}]


def raw_stream(live, text: str, *, timeout: float = 10, **body: Any):
    """A streaming chat request from a plain HTTP client, to see the exact bytes."""
    return httpx.stream(
        "POST",
        f"{live.url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {live.key}"},
        json={"model": MODEL, "messages": ask(text), "stream": True, **body},
        timeout=timeout,
    )


def raw_post(live, text: str, **options: Any) -> httpx.Response:
    with raw_stream(live, text, **options) as response:
        response.read()
    return response


def test_non_streaming_text_with_usage(sdk):
    completion = sdk.chat.completions.create(model=MODEL, messages=ask("hi"))
    choice = completion.choices[0]
    assert choice.message.content == expected_text()
    assert choice.message.role == "assistant" and choice.finish_reason == "stop"
    usage = expected_usage()
    assert completion.usage.prompt_tokens == usage["inputTokens"]
    assert completion.usage.completion_tokens == usage["outputTokens"]
    assert completion.model == MODEL and completion.object == "chat.completion"


def test_streaming_text_and_usage_chunk(sdk):
    chunks = list(
        sdk.chat.completions.create(
            model=MODEL, messages=ask("hi"), stream=True, stream_options={"include_usage": True}
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == expected_text()
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == expected_usage()["outputTokens"]


def test_stream_helper_accumulates_the_final_message(sdk):
    with sdk.chat.completions.stream(model=MODEL, messages=ask("[sim:reasoning]")) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].message.content == expected_text()
    assert final.choices[0].message.model_extra.get("reasoning_content") == expected_reasoning()


def test_tool_calls_streaming_and_not(sdk):
    completion = sdk.chat.completions.create(model=MODEL, messages=ask("[sim:tool-call]"), tools=[READ_FILE])
    call = completion.choices[0].message.tool_calls[0]
    assert completion.choices[0].finish_reason == "tool_calls"
    assert call.id == "call_sim_0_0" and call.function.name == "read_file"
    assert "file_path" in json.loads(call.function.arguments)

    with sdk.chat.completions.stream(
        model=MODEL, messages=ask("[sim:tool-calls]"), tools=[READ_FILE]
    ) as stream:
        final = stream.get_final_completion()
    calls = final.choices[0].message.tool_calls
    assert [c.id for c in calls] == ["call_sim_0_0", "call_sim_0_1", "call_sim_0_2"]
    assert all(isinstance(json.loads(c.function.arguments), dict) for c in calls)
    assert final.choices[0].finish_reason == "tool_calls"


def test_tool_results_go_back_upstream_with_the_tool_name(sdk, live):
    history = ask("read it") + [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "read_file", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "file body"},
    ]
    completion = sdk.chat.completions.create(model=MODEL, messages=history, tools=[READ_FILE])
    assert completion.choices[0].message.content == expected_text()
    messages = live.sim_requests()[0]["body"]["params"]["messages"]
    result = messages[-1]["content"][0]
    assert result["type"] == "tool-result" and result["toolName"] == "read_file"
    assert result["toolCallId"] == "call_1"


def test_raw_sse_grammar_and_headers(live):
    response = raw_post(live, "[sim:tool-calls]", tools=[READ_FILE])
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.content.endswith(b"data: [DONE]\n\n")
    check_openai_sse(response.content)


def test_stop_sequence_cuts_the_text_and_closes_the_upstream(sdk, live):
    completion = sdk.chat.completions.create(
        model=MODEL, messages=ask("[sim:paced deltas=40 delay_ms=40]"), stop=["the"]
    )
    assert completion.choices[0].message.content == "Hello from "
    assert completion.choices[0].finish_reason == "stop"
    record = live.wait_for_outcome("disconnected")
    assert record["events_sent"] < 40


def test_client_disconnect_closes_the_upstream(live):
    with raw_stream(live, "[sim:stall after=1]") as response:
        assert response.status_code == 200
        next(response.iter_bytes())
    live.wait_for_outcome("disconnected")


def test_quiet_upstream_gets_keepalive_comments(live):
    response = raw_post(live, "[sim:paced deltas=3 delay_ms=1300]", timeout=20)
    assert b"\n: " in response.content or response.content.startswith(b": ")
    check_openai_sse(response.content)


@pytest.mark.parametrize(
    ("scenario", "error", "status"),
    [
        ("http-403", openai.PermissionDeniedError, 403),
        ("http-429", openai.RateLimitError, 429),
        ("http-401", openai.InternalServerError, 502),
        ("http-500", openai.InternalServerError, 502),
        ("http-400", openai.BadRequestError, 400),
    ],
)
def test_upstream_failures_become_real_statuses(sdk, live, scenario, error, status):
    live.set_upstream_behaviour(scenario=scenario)
    with pytest.raises(error) as raised:
        sdk.chat.completions.create(model=MODEL, messages=ask("hi"), stream=True)
    assert raised.value.status_code == status
    body = raised.value.response.json()["error"]
    assert set(body) == {"message", "type", "param", "code"} and body["message"]
    assert live.upstream_key not in raised.value.response.text
    if status == 429:
        assert int(raised.value.response.headers["retry-after"]) > 0


def test_failure_after_output_is_an_error_chunk(live):
    response = raw_post(live, "[sim:truncate after=2]")
    assert response.status_code == 200
    check_openai_sse(response.content, expect_error=True)
    assert b'"error"' in response.content


def test_bad_input_is_a_400_in_the_openai_envelope(sdk):
    with pytest.raises(openai.BadRequestError) as raised:
        sdk.chat.completions.create(model=MODEL, messages=[])
    assert raised.value.status_code == 400
    assert raised.value.body["param"] == "messages"


def test_bad_key_is_a_401(live):
    bad = openai.OpenAI(base_url=f"{live.url}/v1", api_key="ccs_wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.chat.completions.create(model=MODEL, messages=ask("hi"))


async def test_async_sdk_streams_concurrently(live):
    client = openai.AsyncOpenAI(
        base_url=f"{live.url}/v1", api_key=live.key, max_retries=0, _strict_response_validation=True
    )
    import asyncio

    async def one(i: int) -> str:
        stream = await client.chat.completions.create(
            model=MODEL, messages=ask(f"[sim:text deltas={5 + i}]"), stream=True
        )
        return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

    texts = await asyncio.gather(*(one(i) for i in range(8)))
    assert texts == [expected_text(deltas=5 + i) for i in range(8)]
    await client.close()


def test_parse_with_a_pydantic_response_format(sdk, live):
    from pydantic import BaseModel

    class Pet(BaseModel):
        name: str
        age: int

    completion = sdk.chat.completions.parse(
        model=MODEL, messages=ask('[sim:echo] {"name": "Rex", "age": 3}'), response_format=Pet
    )
    assert completion.choices[0].message.parsed == Pet(name="Rex", age=3)
    system = live.sim_requests()[-1]["body"]["params"]["system"]
    assert "JSON" in (system if isinstance(system, str) else json.dumps(system))


def test_a_two_turn_tool_loop(sdk, live):
    messages = ask("[sim:tool-calls]")
    first = sdk.chat.completions.create(model=MODEL, messages=messages, tools=[READ_FILE])
    calls = first.choices[0].message.tool_calls
    messages.append(first.choices[0].message.model_dump(exclude_none=True))
    messages += [{"role": "tool", "tool_call_id": c.id, "content": f"contents of {c.id}"} for c in calls]
    second = sdk.chat.completions.create(model=MODEL, messages=messages, tools=[READ_FILE])
    assert second.choices[0].finish_reason == "stop"
    assert second.choices[0].message.content == expected_text("tool-calls")
    sent = live.sim_requests()[-1]["body"]["params"]["messages"]
    results = [part for message in sent for part in message["content"] if part["type"] == "tool-result"]
    assert [r["toolCallId"] for r in results] == [c.id for c in calls]


def test_an_error_mid_stream_raises_api_error_in_the_sdk(sdk):
    stream = sdk.chat.completions.create(model=MODEL, messages=ask("[sim:error-fatal after=2]"), stream=True)
    seen = []
    with pytest.raises(openai.APIError):
        for chunk in stream:
            seen.append(chunk)
    assert "".join(c.choices[0].delta.content or "" for c in seen if c.choices) == "Hello from "


def test_a_large_stream_to_a_slow_reader_arrives_whole_and_in_order(live):
    # Megabytes of frames while the client is not reading: the socket fills up, so writes are
    # partly sent and partly buffered, and must still arrive complete and in order.
    with raw_stream(live, "[sim:long deltas=40000]", timeout=30) as response:
        time.sleep(1.0)
        raw = response.read()
    chunks = check_openai_sse(raw)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c.get("choices"))
    assert len(raw) > 4_000_000
    assert text == expected_text("long deltas=40000")
