"""Protocol fidelity and hardening (issue 15), each case over HTTP on a live gateway: both
surfaces where both apply, streaming and not."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import anthropic
import httpx
import pytest

from proxy.upstream.simulator.events import expected_usage
from proxy.upstream.simulator.scenarios import expected_text
from tests.factories import make_client_key
from tests.golden import check_anthropic_sse, check_openai_sse, parse_sse

pytestmark = [pytest.mark.live]

MODEL = "deepseek/deepseek-v4-flash"
CLAUDE = "claude-sonnet-4-6"
CHAT, MESSAGES, COUNT = "/v1/chat/completions", "/v1/messages", "/v1/messages/count_tokens"
WEATHER_OPENAI = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
WEATHER_ANTHROPIC = {
    "name": "get_weather",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def post(
    live, path: str, body: dict[str, Any], *, key: str | None = None, timeout: float = 30
) -> httpx.Response:
    return httpx.post(
        f"{live.url}{path}",
        headers={"Authorization": f"Bearer {key or live.key}", "anthropic-version": "2023-06-01"},
        json=body,
        timeout=timeout,
    )


def chat(text: str, **body: Any) -> dict[str, Any]:
    return {"model": MODEL, "messages": [{"role": "user", "content": text}], **body}


def message(text: str, **body: Any) -> dict[str, Any]:
    return {"model": CLAUDE, "max_tokens": 1024, "messages": [{"role": "user", "content": text}], **body}


def openai_chunks(raw: bytes) -> list[dict[str, Any]]:
    return check_openai_sse(raw)


def anthropic_events(raw: bytes) -> list[dict[str, Any]]:
    check_anthropic_sse(raw)
    return [json.loads(data) for _, data in parse_sse(raw)]


def streamed_calls(chunks: list[dict[str, Any]]) -> dict[int, dict[str, str]]:
    calls: dict[int, dict[str, str]] = {}
    for chunk in chunks:
        for choice in chunk["choices"]:
            for call in choice["delta"].get("tool_calls") or []:
                entry = calls.setdefault(call["index"], {"name": "", "arguments": ""})
                entry["name"] += call.get("function", {}).get("name") or ""
                entry["arguments"] += call.get("function", {}).get("arguments") or ""
    return calls


# One valid request can freeze the gateway -------------------------------------------------


def _many_user_turns(count: int) -> list[dict[str, str]]:
    return [{"role": "user", "content": f"message number {index}"} for index in range(count)]


class LatencyProbe(threading.Thread):
    """A second client measuring its own GET /v1/models round trips while the big one runs."""

    def __init__(self, live) -> None:
        super().__init__(daemon=True)
        self._live = live
        self.stop = threading.Event()
        self.latencies: list[float] = []

    def run(self) -> None:
        with httpx.Client(headers={"Authorization": f"Bearer {self._live.key}"}, timeout=30) as client:
            while not self.stop.is_set():
                started = time.perf_counter()
                assert client.get(f"{self._live.url}/v1/models").status_code == 200
                self.latencies.append(time.perf_counter() - started)
                time.sleep(0.01)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (CHAT, {"model": MODEL, "messages": _many_user_turns(100_000)}),
        (COUNT, {"model": CLAUDE, "messages": _many_user_turns(100_000)}),
    ],
    ids=["chat-completions", "count-tokens"],
)
def test_100000_user_turns_do_not_hold_other_clients(live, path, body):
    probe = LatencyProbe(live)
    probe.start()
    time.sleep(0.2)  # a baseline before the big request
    try:
        started = time.perf_counter()
        response = post(live, path, body, timeout=120)
        big = time.perf_counter() - started
    finally:
        probe.stop.set()
        probe.join(30)
    assert response.status_code == 200, response.text
    if path == COUNT:
        assert response.json()["input_tokens"] > 100_000
    else:
        assert response.json()["choices"][0]["message"]["content"] == expected_text()
        assert live.sim_requests()[-1]["body_bytes"] > 3_000_000  # all of it went upstream
    assert len(probe.latencies) >= 3
    # Before the fix one request held the loop for ~8 s; other clients now wait well under 1 s.
    assert max(probe.latencies) < 1.0, (big, sorted(probe.latencies)[-5:])


@pytest.mark.parametrize("path", [CHAT, MESSAGES])
def test_more_messages_than_the_apis_accept_is_a_clear_400(live, path):
    body = {"model": MODEL, "max_tokens": 10, "messages": _many_user_turns(100_001)}
    response = post(live, path, body, timeout=120)
    assert response.status_code == 400
    text = json.dumps(response.json())
    assert "Too many messages" in text and "100,000" in text
    if path == MESSAGES:
        assert response.json()["type"] == "error"


# Answers that differ from what the official APIs specify ----------------------------------


# Three calls whose argument fragments arrive 50 ms apart: the gateway can close in between.
PACED_CALLS = "[sim:tool-calls tool=get_weather delay_ms=50]"


@pytest.mark.parametrize("stream", [False, True])
def test_parallel_tool_calls_false_returns_one_call_openai(live, stream):
    body = chat(PACED_CALLS, tools=[WEATHER_OPENAI], parallel_tool_calls=False)
    if stream:
        body |= {"stream": True, "stream_options": {"include_usage": True}}
    response = post(live, CHAT, body)
    assert response.status_code == 200
    if stream:
        chunks = openai_chunks(response.content)
        calls = streamed_calls(chunks)
        assert list(calls) == [0] and json.loads(calls[0]["arguments"]) == {"city": "value"}
        finish = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1]
        usage = chunks[-1]["usage"]
    else:
        choice = response.json()["choices"][0]
        assert len(choice["message"]["tool_calls"]) == 1
        finish, usage = choice["finish_reason"], response.json()["usage"]
    assert finish == "tool_calls"
    assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0  # estimated, never 0/0
    assert live.wait_for_outcome("disconnected")["finish_sent"] is False  # closed after call one


@pytest.mark.parametrize("stream", [False, True])
def test_disable_parallel_tool_use_returns_one_call_anthropic(live, stream):
    body = message(
        PACED_CALLS,
        tools=[WEATHER_ANTHROPIC],
        tool_choice={"type": "auto", "disable_parallel_tool_use": True},
        stream=stream,
    )
    response = post(live, MESSAGES, body)
    assert response.status_code == 200
    if stream:
        events = anthropic_events(response.content)
        blocks = [e["content_block"] for e in events if e["type"] == "content_block_start"]
        delta = next(e for e in events if e["type"] == "message_delta")
        reason, usage = delta["delta"]["stop_reason"], delta["usage"]
    else:
        blocks = response.json()["content"]
        reason, usage = response.json()["stop_reason"], response.json()["usage"]
    assert [block["type"] for block in blocks].count("tool_use") == 1
    assert reason == "tool_use"
    assert usage["input_tokens"] > 0 and usage["output_tokens"] > 0
    assert live.wait_for_outcome("disconnected")["finish_sent"] is False


def test_parallel_calls_stay_parallel_by_default(live):
    response = post(live, CHAT, chat("[sim:tool-calls tool=get_weather]", tools=[WEATHER_OPENAI]))
    assert len(response.json()["choices"][0]["message"]["tool_calls"]) == 3


@pytest.mark.parametrize("thinking", [None, {"type": "disabled"}])
@pytest.mark.parametrize("stream", [False, True])
def test_no_thinking_blocks_unless_thinking_is_enabled(live, thinking, stream):
    body = message("[sim:reasoning]", stream=stream) | ({"thinking": thinking} if thinking else {})
    response = post(live, MESSAGES, body)
    assert response.status_code == 200
    if stream:
        events = anthropic_events(response.content)
        kinds = [e["content_block"]["type"] for e in events if e["type"] == "content_block_start"]
        usage = next(e for e in events if e["type"] == "message_delta")["usage"]
    else:
        kinds = [block["type"] for block in response.json()["content"]]
        usage = response.json()["usage"]
        assert response.json()["content"][0]["text"] == expected_text("reasoning")
    assert kinds == ["text"]
    assert usage["output_tokens"] == expected_usage("reasoning")["outputTokens"]  # reasoning counted


def test_thinking_blocks_come_back_when_enabled(live):
    body = message("[sim:reasoning]", thinking={"type": "enabled", "budget_tokens": 2048})
    assert [block["type"] for block in post(live, MESSAGES, body).json()["content"]] == ["thinking", "text"]


def test_openai_reasoning_content_is_unchanged(live):
    reply = post(live, CHAT, chat("[sim:reasoning]")).json()["choices"][0]["message"]
    assert reply["reasoning_content"] and reply["content"] == expected_text("reasoning")


STOP_TEXT = "[sim:paced deltas=40 delay_ms=30]"


@pytest.mark.parametrize("stream", [False, True])
def test_stop_sequence_reply_reports_estimated_usage_openai(live, stream):
    body = chat(STOP_TEXT, stop=["the"])
    if stream:
        body |= {"stream": True, "stream_options": {"include_usage": True}}
    response = post(live, CHAT, body)
    if stream:
        chunks = openai_chunks(response.content)
        text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
        usage = chunks[-1]["usage"]
    else:
        text = response.json()["choices"][0]["message"]["content"]
        usage = response.json()["usage"]
    assert text == "Hello from "
    assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0
    assert live.wait_for_outcome("disconnected")["finish_sent"] is False  # ended before the usage


@pytest.mark.parametrize("stream", [False, True])
def test_stop_sequence_reply_reports_estimated_usage_anthropic(live, stream):
    response = post(live, MESSAGES, message(STOP_TEXT, stop_sequences=["the"], stream=stream))
    if stream:
        events = anthropic_events(response.content)
        usage = next(e for e in events if e["type"] == "message_delta")["usage"]
        reason = next(e for e in events if e["type"] == "message_delta")["delta"]["stop_reason"]
    else:
        usage, reason = response.json()["usage"], response.json()["stop_reason"]
    assert reason == "stop_sequence"
    assert usage["input_tokens"] > 0 and usage["output_tokens"] > 0
    assert live.wait_for_outcome("disconnected")["finish_sent"] is False


def test_message_start_carries_the_input_estimate_and_message_delta_the_real_usage(live):
    # Counted first: the gateway's calibration learns from each finished request, so a count
    # taken after the stream may already use what that stream's real usage taught it.
    counted = post(
        live, COUNT, {"model": CLAUDE, "messages": message("hello there, how are you?")["messages"]}
    )
    response = post(live, MESSAGES, message("hello there, how are you?", stream=True))
    events = anthropic_events(response.content)
    start = events[0]["message"]["usage"]
    assert start["input_tokens"] > 0 and start["output_tokens"] == 0
    assert start["input_tokens"] == counted.json()["input_tokens"]
    final = next(e for e in events if e["type"] == "message_delta")["usage"]
    assert final["input_tokens"] == expected_usage()["inputTokens"]
    assert final["output_tokens"] == expected_usage()["outputTokens"]


EMPTY_LENGTH = "[sim:reasoning deltas=0 finish=length]"


@pytest.mark.parametrize("stream", [False, True])
def test_length_without_output_is_an_empty_200_like_openai(live, stream):
    response = post(live, CHAT, chat(EMPTY_LENGTH, stream=stream, max_completion_tokens=50))
    assert response.status_code == 200
    if stream:
        chunks = openai_chunks(response.content)
        assert response.content.endswith(b"data: [DONE]\n\n")
        assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "length"
        assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]) == ""
    else:
        choice = response.json()["choices"][0]
        assert choice["finish_reason"] == "length" and choice["message"]["content"] == ""


def test_the_openai_sdk_reads_the_empty_length_answer(live):
    with live.openai_client() as sdk:
        completion = sdk.chat.completions.create(model=MODEL, messages=chat(EMPTY_LENGTH)["messages"])
    assert completion.choices[0].finish_reason == "length" and completion.choices[0].message.content == ""


SEARCH_RESULT = {
    "type": "search_result",
    "source": "https://docs.example.com/ccsite",
    "title": "ccsite docs",
    "content": [{"type": "text", "text": "ccsite relays Command Code."}],
}


@pytest.mark.parametrize("stream", [False, True])
def test_search_results_and_text_documents_degrade_to_text(live, stream):
    messages = [
        {"role": "user", "content": "search [sim:text]"},
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "toolu_1", "name": "search", "input": {}}],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": [SEARCH_RESULT]},
                SEARCH_RESULT,
                {
                    "type": "document",
                    "title": "notes",
                    "source": {"type": "content", "content": [{"type": "text", "text": "note text"}]},
                },
                {"type": "text", "text": "summarise [sim:text]"},
            ],
        },
    ]
    body = {"model": CLAUDE, "max_tokens": 100, "messages": messages, "stream": stream}
    body["tools"] = [{"name": "search", "input_schema": {"type": "object"}}]
    response = post(live, MESSAGES, body)
    assert response.status_code == 200, response.text
    sent = json.dumps(live.sim_requests()[-1]["body"]["params"]["messages"])
    assert "ccsite docs" in sent and "https://docs.example.com/ccsite" in sent
    assert "ccsite relays Command Code." in sent and "note text" in sent


def test_a_pdf_document_is_refused_saying_why(live):
    pdf = {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBE"}}
    response = post(live, MESSAGES, {**message("x"), "messages": [{"role": "user", "content": [pdf]}]})
    assert response.status_code == 400 and "PDFs" in response.json()["error"]["message"]


@pytest.mark.parametrize("stream", [False, True])
def test_a_chat_of_instructions_alone_is_answered(live, stream):
    body = {
        "model": MODEL,
        "messages": [
            {"role": "system", "content": "Say hello."},
            {"role": "developer", "content": "Briefly."},
        ],
        "stream": stream,
    }
    response = post(live, CHAT, body)
    assert response.status_code == 200, response.text
    if stream:
        openai_chunks(response.content)
    else:
        assert response.json()["choices"][0]["message"]["content"] == expected_text()
    sent = live.sim_requests()[-1]["body"]["params"]["messages"]
    assert sent == [{"role": "user", "content": [{"type": "text", "text": "Say hello.\n\nBriefly."}]}]


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(
    "fields",
    [
        {"temperature": 2},
        {"temperature": 0, "top_p": 0},
        {"top_p": 1, "frequency_penalty": -2, "presence_penalty": 2},
        {"frequency_penalty": 2, "presence_penalty": -2},
        {"max_completion_tokens": 1_000_000},
        {"max_tokens": 1},
        {"n": 1, "logprobs": False, "top_logprobs": 0},
        {"seed": -9_223_372_036_854_775_808},
        {"stop": ["a", "b", "c", "d"]},
    ],
)
def test_documented_openai_values_are_accepted(live, fields, stream):
    response = post(live, CHAT, chat("hi", stream=stream, **fields))
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(
    "fields",
    [
        {"temperature": 0},
        {"temperature": 1, "top_p": 1, "top_k": 0},
        {"top_p": 0, "top_k": 500},
        {"max_tokens": 1},
        {"max_tokens": 1_000_000},
        {"thinking": {"type": "enabled", "budget_tokens": 1024}},
        {"tool_choice": {"type": "any", "disable_parallel_tool_use": False}, "tools": [WEATHER_ANTHROPIC]},
    ],
)
def test_documented_anthropic_values_are_accepted(live, fields, stream):
    response = post(live, MESSAGES, message("hi", stream=stream) | fields)
    assert response.status_code == 200, response.text


# Errors in the client's envelope, always --------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH", "OPTIONS"])
@pytest.mark.parametrize("path", [CHAT, MESSAGES, COUNT])
def test_wrong_methods_get_a_json_405_with_allow(live, method, path):
    response = httpx.request(method, f"{live.url}{path}", headers={"Authorization": f"Bearer {live.key}"})
    assert response.status_code == 405
    assert response.headers["content-type"] == "application/json"
    assert response.headers["allow"] == "POST"
    body = response.json()
    if path.startswith("/v1/messages"):
        assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    else:
        assert body["error"]["code"] == "method_not_allowed"
    assert method in json.dumps(body)


def test_post_on_the_models_route_is_a_json_405(live):
    response = httpx.post(f"{live.url}/v1/models", headers={"Authorization": f"Bearer {live.key}"})
    assert response.status_code == 405 and response.headers["allow"] == "GET"
    assert response.json()["error"]["code"] == "method_not_allowed"


RETRIED_FAILURES = ["[sim:truncate after=0]", "[sim:error-retryable after=0]"]


@pytest.mark.parametrize("directive", RETRIED_FAILURES)
@pytest.mark.parametrize("stream", [False, True])
def test_a_failing_upstream_that_is_retried_gets_its_real_status_openai(live, directive, stream):
    response = post(live, CHAT, chat(directive, stream=stream))
    assert response.status_code == 502
    assert response.json()["error"]["type"] == "server_error"
    assert len(live.sim_requests()) == 3  # the first try and both retries


@pytest.mark.parametrize("directive", RETRIED_FAILURES)
@pytest.mark.parametrize("stream", [False, True])
def test_a_failing_upstream_that_is_retried_gets_its_real_status_anthropic(live, directive, stream):
    response = post(live, MESSAGES, message(directive, stream=stream))
    assert response.status_code == 502
    assert response.json()["type"] == "error" and response.json()["error"]["type"] == "api_error"


def test_a_retry_that_recovers_streams_normally(live):
    live.set_upstream_behaviour(fail_first=1, fail_with="truncate after=0")
    response = post(live, CHAT, chat("hi", stream=True))
    assert response.status_code == 200
    chunks = openai_chunks(response.content)
    assert (
        "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
        == expected_text()
    )


@pytest.mark.parametrize("stream", [False, True])
def test_an_upstream_529_keeps_its_reason_phrase(live, stream):
    response = post(live, MESSAGES, message("[sim:http-529]", stream=stream))
    assert response.status_code == 529 and response.reason_phrase == "Overloaded"
    assert response.json()["error"]["type"] == "overloaded_error"


def test_the_anthropic_sdk_sees_an_overloaded_error(live):
    sdk = anthropic.Anthropic(base_url=live.url, api_key=live.key, max_retries=0)
    with pytest.raises(anthropic.APIStatusError) as raised:
        sdk.messages.create(
            model=CLAUDE, max_tokens=10, messages=[{"role": "user", "content": "[sim:http-529]"}]
        )
    assert raised.value.status_code == 529


# Isolation ---------------------------------------------------------------------------------


def _thread_of(live, key: str, path: str, body: dict[str, Any]) -> str:
    assert post(live, path, body, key=key).status_code == 200
    return live.sim_requests()[-1]["body"]["threadId"]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (CHAT, chat("hi", user="shared-session")),
        (MESSAGES, message("hi", metadata={"user_id": "shared-session"})),
        (CHAT, chat("hi", stream=True, prompt_cache_key="shared-session")),
    ],
    ids=["openai-user", "anthropic-metadata", "openai-stream-prompt-cache-key"],
)
def test_the_same_session_id_from_two_users_never_shares_a_thread(live, path, body):
    _, other_key = make_client_key()  # another user
    mine = _thread_of(live, live.key, path, body)
    again = _thread_of(live, live.key, path, body)
    theirs = _thread_of(live, other_key, path, body)
    assert mine == again  # one user's conversation keeps its thread
    assert theirs != mine


def test_django_logs_529_with_its_reason_phrase():
    from proxy.surfaces import json_response

    assert json_response({}, status=529).reason_phrase == "Overloaded"
    assert json_response({}, status=502).reason_phrase == "Bad Gateway"


@pytest.mark.parametrize(
    ("path", "body"), [("/v1/chat/completions", chat("hello")), ("/v1/messages", message("hello"))]
)
def test_a_whole_answer_carries_its_length_not_chunks(live, path, body):
    answered = post(live, path, body)
    refused = post(live, path, body, key="sk-not-a-key")
    for response, status in ((answered, 200), (refused, 401)):
        assert response.status_code == status
        assert response.headers["content-length"] == str(len(response.content))
        assert "transfer-encoding" not in response.headers


@pytest.mark.parametrize(
    ("path", "body"), [(CHAT, chat("hi", stop=["lo"])), (MESSAGES, message("hi", stop_sequences=["lo"]))]
)
def test_a_stream_ended_by_its_first_token_reports_the_usage_that_came_with_it(live, path, body):
    # The simulator sends a short reply, its finish and usage included, in one chunk: a stop
    # sequence met by the first token ends the stream, and it reports and records the
    # upstream's usage, as the whole (non-streaming) answer does, not an estimate.
    from usage.models import RequestLog

    whole_response = post(live, path, body)
    whole = whole_response.json()["usage"]
    if path == CHAT:
        response = post(live, path, body | {"stream": True, "stream_options": {"include_usage": True}})
        streamed = openai_chunks(response.content)[-1]["usage"]
    else:
        response = post(live, path, body | {"stream": True})
        streamed = next(e for e in anthropic_events(response.content) if e["type"] == "message_delta")[
            "usage"
        ]
        whole = {"output_tokens": whole["output_tokens"]}
        streamed = {"output_tokens": streamed["output_tokens"]}
    assert streamed == whole
    ids = [whole_response.headers["x-request-id"], response.headers["x-request-id"]]
    rows = RequestLog.objects.filter(request_id__in=ids)
    deadline = time.monotonic() + 5
    while rows.count() < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sorted(rows.values_list("stream", "tokens_estimated")) == [(False, False), (True, False)]
