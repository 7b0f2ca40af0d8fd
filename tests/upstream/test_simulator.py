"""The Command Code simulator on a real loopback socket: streams, errors, keys, recording."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from proxy.translate.catalog import all_models
from proxy.upstream.simulator.config import KeyBehaviour, SimConfig
from proxy.upstream.simulator.events import expected_usage
from proxy.upstream.simulator.recorder import RequestRecord, key_fingerprint
from proxy.upstream.simulator.scenarios import expected_reasoning, expected_text
from proxy.upstream.simulator.server import SimulatorThread

pytestmark = pytest.mark.live

KEY = "user_simtest_0001"
BAD_KEY = "user_bad"
FLAKY_KEY = "user_flaky"
MODEL = "deepseek/deepseek-v4-flash"
THREAD_ID = "4725114e-b8c1-4245-9407-413c8423e973"
# protocol §3: the real CLI sends this duplicated value; every test uses it.
CLI_CONTENT_TYPE = "application/json, application/json"


def headers(key: str = KEY) -> dict[str, str]:
    return {"authorization": f"Bearer {key}", "content-type": CLI_CONTENT_TYPE, "user-agent": "cli"}


def envelope(
    text: str = "hi", *, model: str = MODEL, messages: list[Any] | None = None, **params: Any
) -> dict:
    """A §5 envelope shaped like the 1.64.0 CLI's (values illustrative)."""
    config = {
        "workingDir": "/home/dev/app",
        "date": "2026-11-22",
        "environment": "linux",
        "structure": ["README.md"],
        "isGitRepo": False,
        "currentBranch": "",
        "mainBranch": "",
        "gitStatus": "",
        "recentCommits": [],
    }
    body_params = {
        "model": model,
        "messages": messages or [{"role": "user", "content": [{"type": "text", "text": text}]}],
        "tools": [],
        "system": [{"type": "text", "text": "Be brief."}],
        "max_tokens": 64000,
        "stream": True,
        **params,
    }
    return {
        "config": config,
        "memory": None,
        "taste": None,
        "skills": None,
        "permissionMode": "standard",
        "threadId": THREAD_ID,
        "params": body_params,
    }


def parse_stream(body: bytes) -> list[dict[str, Any]]:
    """Check protocol §8.1 framing (bare NDJSON, no SSE) and return the events."""
    assert body.endswith(b"\n")
    lines = body.split(b"\n")[:-1]
    for line in lines:
        assert line and not line.startswith((b"data:", b"event:", b":")), line[:80]
        assert line != b"[DONE]"
    return [json.loads(line) for line in lines]


def types(events: list[dict[str, Any]]) -> list[str]:
    return [event["type"] for event in events]


def text_of(events: list[dict[str, Any]], kind: str = "text-delta") -> str:
    return "".join(event["text"] for event in events if event["type"] == kind)


def finish_of(events: list[dict[str, Any]]) -> dict[str, Any]:
    return next(event for event in events if event["type"] == "finish")


def wait_for(predicate: Callable[[], Any], timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError("condition not met in time")


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorThread]:
    config = SimConfig(
        keys={
            BAD_KEY: KeyBehaviour(scenario="http-401"),
            FLAKY_KEY: KeyBehaviour(fail_first=2, fail_with="http-500"),
            "user_slowkey": KeyBehaviour(defaults="deltas=2"),
        }
    )
    with SimulatorThread(config) as server:
        yield server


@pytest.fixture
def client(sim: SimulatorThread) -> Iterator[httpx.Client]:
    sim.app.reset()
    with httpx.Client(base_url=sim.url, timeout=10.0) as http:
        yield http


def generate(client: httpx.Client, text: str = "hi", *, key: str = KEY, **kwargs: Any) -> httpx.Response:
    return client.post("/alpha/generate", json=envelope(text, **kwargs), headers=headers(key))


def stream_events(client: httpx.Client, text: str = "hi", **kwargs: Any) -> list[dict[str, Any]]:
    response = generate(client, text, **kwargs)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/event-stream"
    return parse_stream(response.content)


def generate_records(sim: SimulatorThread) -> list[RequestRecord]:
    return sim.app.recorder.records(path="/alpha/generate")


def test_default_answer_is_short_text_with_usage_in_protocol_order(client):
    events = stream_events(client)

    assert types(events) == [
        "start",
        "start-step",
        "text-start",
        *["text-delta"] * 4,
        "text-end",
        "finish-step",
        "finish",
        "provider-metadata",
    ]
    assert text_of(events) == expected_text() == "Hello from the simulator."
    finish = finish_of(events)
    assert finish["finishReason"] == "stop" and finish["rawFinishReason"] == "stop"
    assert finish["totalUsage"] == expected_usage()
    step = events[-3]
    assert step["usage"] == finish["totalUsage"]
    assert step["response"]["modelId"] == MODEL and step["response"]["id"].startswith("gen_sim_")
    assert float(events[-1]["providerMetadata"]["gateway"]["cost"]) > 0


def test_reasoning_emits_text_start_before_reasoning_end(client):
    events = stream_events(client, "[sim:reasoning reasoning_deltas=2 deltas=3]")

    assert types(events)[2:10] == [
        "reasoning-start",
        "reasoning-delta",
        "reasoning-delta",
        "text-start",
        "reasoning-end",
        "text-delta",
        "text-delta",
        "text-delta",
    ]
    assert (
        text_of(events, "reasoning-delta")
        == expected_reasoning(reasoning_deltas=2)
        == "Thought 1. Thought 2."
    )
    assert text_of(events) == expected_text(deltas=3)
    usage = finish_of(events)["totalUsage"]
    assert usage["outputTokenDetails"] == {"textTokens": 3, "reasoningTokens": 2}
    assert usage["outputTokens"] == 5 and usage["reasoningTokens"] == 2


def _tool_calls(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [event for event in events if event["type"] == "tool-call"]


def test_tool_call_streams_input_then_call_and_finishes_with_tool_calls(client):
    events = stream_events(client, "[sim:tool-call deltas=0 arg_deltas=3]")

    assert types(events)[2:] == [
        "tool-input-start",
        "tool-input-delta",
        "tool-input-delta",
        "tool-input-delta",
        "tool-input-end",
        "tool-call",
        "finish-step",
        "finish",
        "provider-metadata",
    ]
    call = _tool_calls(events)[0]
    # read_file points inside the client's cwd (examples/03 caveat).
    assert call == {
        "type": "tool-call",
        "toolCallId": "call_sim_0_0",
        "toolName": "read_file",
        "input": {"file_path": "/home/dev/app/README.md"},
    }
    fragments = "".join(event["delta"] for event in events if event["type"] == "tool-input-delta")
    assert json.loads(fragments) == call["input"]
    assert finish_of(events)["finishReason"] == "tool-calls"
    assert finish_of(events)["rawFinishReason"] == "tool_calls"


def test_parallel_tool_calls_each_have_their_own_input_events(client):
    events = stream_events(client, "[sim:tool-calls tool=get_weather,search args=2]")

    calls = _tool_calls(events)
    assert [call["toolName"] for call in calls] == ["get_weather", "search", "get_weather"]
    assert len({call["toolCallId"] for call in calls}) == 3
    assert calls[1]["input"] == {"arg1": "value 1", "arg2": "value 2"}
    for call in calls:
        own = [event for event in events if event.get("id") == call["toolCallId"]]
        assert types(own)[0] == "tool-input-start" and types(own)[-1] == "tool-input-end"
        assert json.loads("".join(event["delta"] for event in own[1:-1])) == call["input"]
    assert text_of(events) == expected_text("tool-calls")


def test_tool_call_uses_the_first_declared_tool_when_read_file_is_absent(client):
    tools = [{"name": "get_weather", "description": "d", "input_schema": {"type": "object"}}]

    call = _tool_calls(stream_events(client, "[sim:tool-call]", tools=tools))[0]

    assert (call["toolName"], call["input"]) == ("get_weather", {"arg1": "value 1"})


def test_tool_scenario_answers_text_once_the_tool_results_arrive(client):
    first = stream_events(client, "[sim:tool-call]")
    call = _tool_calls(first)[0]
    history = [
        {"role": "user", "content": [{"type": "text", "text": "[sim:tool-call]"}]},
        {
            "role": "assistant",
            "content": [{"type": "tool-call", **{k: call[k] for k in ("toolCallId", "toolName", "input")}}],
        },
        {
            "role": "tool",
            "content": [
                {
                    "type": "tool-result",
                    "toolCallId": call["toolCallId"],
                    "toolName": call["toolName"],
                    "output": {"type": "text", "value": "# readme"},
                }
            ],
        },
    ]

    second = stream_events(client, messages=history)

    assert _tool_calls(second) == []
    assert text_of(second) == expected_text("tool-call")
    assert finish_of(second)["finishReason"] == "stop"


def test_echo_repeats_the_last_user_text_without_the_directive(client):
    events = stream_events(client, "[sim:echo deltas=3] Repeat after me: 42")

    assert (
        text_of(events)
        == "Repeat after me: 42"
        == expected_text("echo", echo="Repeat after me: 42 [sim:echo]")
    )
    assert types(events).count("text-delta") == 3


def test_scenario_model_selects_the_scenario(client, sim):
    events = stream_events(client, "plain words", model="sim/long")

    assert text_of(events) == expected_text("long")
    assert types(events).count("text-delta") == 1000
    assert generate_records(sim)[-1].selected_by == "model"


def test_long_stream_in_several_chunks_arrives_complete(client):
    events = stream_events(client, "[sim:long deltas=5000]")

    assert text_of(events) == expected_text(deltas=5000)
    assert finish_of(events)["totalUsage"]["outputTokens"] == 5000


def test_unicode_text_keeps_line_separators_inside_json_lines(client):
    response = generate(client, "[sim:unicode]")

    # U+2028 and U+0085 are sent raw (orjson does not escape them): only \n ends a line.
    assert "\u2028".encode() in response.content and "\x85".encode() in response.content
    assert text_of(parse_stream(response.content)) == expected_text("unicode")


def test_huge_start_step_line_is_one_json_line(client):
    response = generate(client, "[sim:huge-start-step start_step_kb=5120]")

    line = response.content.split(b"\n")[1]
    assert len(line) > 5 * 1024 * 1024
    assert json.loads(line)["type"] == "start-step"
    assert text_of(parse_stream(response.content)) == expected_text()


def test_cache_usage_counts_cache_in_input_and_reasoning_in_output(client):
    usage = finish_of(stream_events(client, "[sim:cache-usage]"))["totalUsage"]

    details = usage["inputTokenDetails"]
    assert details == {"noCacheTokens": 212, "cacheReadTokens": 1792, "cacheWriteTokens": 256}
    assert usage["inputTokens"] == 212 + 1792 + 256  # protocol §8.5
    assert usage["cachedInputTokens"] == 1792
    assert usage["outputTokens"] == 4 + 3 and usage["outputTokenDetails"]["reasoningTokens"] == 3
    assert usage["totalTokens"] == usage["inputTokens"] + usage["outputTokens"]
    assert usage == expected_usage("cache-usage")


def test_length_finish(client):
    finish = finish_of(stream_events(client, "[sim:length]"))

    assert (finish["finishReason"], finish["rawFinishReason"]) == ("length", "max_tokens")


def test_truncated_stream_ends_without_finish(client):
    events = stream_events(client, "[sim:truncate after=3]")

    assert "finish" not in types(events) and types(events)[-1] == "text-delta"
    assert text_of(events) == expected_text("truncate after=3") == "Hello from the "


@pytest.mark.parametrize(
    ("directive", "status", "retryable"),
    [("error-retryable", 503, True), ("error-fatal", 402, False), ("error-retryable status=529", 529, True)],
)
def test_inband_error_ends_the_stream_after_text(client, directive, status, retryable):
    events = stream_events(client, f"[sim:{directive}]")

    assert types(events)[-2:] == ["text-delta", "error"]
    error = events[-1]["error"]
    assert (error["statusCode"], error["isRetryable"]) == (status, retryable)
    assert error["message"]
    assert "finish" not in types(events)


def test_inband_error_before_any_text(client):
    events = stream_events(client, "[sim:error-retryable after=0]")

    assert types(events) == ["start", "start-step", "error"]


def test_abort_is_a_terminal_event_without_finish(client):
    events = stream_events(client, "[sim:abort]")

    assert types(events)[-1] == "abort" and "finish" not in types(events)


def test_paced_stream_spaces_deltas_by_the_delay(client):
    started = time.monotonic()
    events = stream_events(client, "[sim:text deltas=3 delay_ms=40]")

    assert time.monotonic() - started >= 0.04 * 2
    assert text_of(events) == expected_text(deltas=3)


def test_paced_stream_sends_the_first_delta_without_delay(client):
    started = time.monotonic()
    with client.stream(
        "POST", "/alpha/generate", json=envelope("[sim:text deltas=3 delay_ms=300]"), headers=headers()
    ) as response:
        for line in response.iter_lines():
            if '"text-delta"' in line:
                break
        assert time.monotonic() - started < 0.25


def test_slow_first_event_sends_headers_first(client):
    started = time.monotonic()
    with client.stream(
        "POST", "/alpha/generate", json=envelope("[sim:slow first_delay_ms=400]"), headers=headers()
    ) as response:
        headers_after = time.monotonic() - started
        body = response.read()
    assert headers_after < 0.3
    assert time.monotonic() - started >= 0.4
    assert text_of(parse_stream(body)) == expected_text()


def test_key_defaults_apply_under_any_scenario(client):
    events = stream_events(client, "[sim:reasoning]", key="user_slowkey")

    assert text_of(events) == expected_text(deltas=2)


ERROR_CASES = [
    ("http-401", 401, "UNAUTHORIZED"),
    ("http-402", 402, "MODEL_NOT_IN_PLAN"),
    ("http-403", 403, "MODEL_NOT_IN_PLAN"),
    ("http-429", 429, "RATE_LIMITED"),
    ("http-429-plain", 429, "RATE_LIMITED"),
    ("http-500", 500, "INTERNAL_SERVER_ERROR"),
    ("http-529", 529, "OVERLOADED"),
    ("http-418", 418, "ERROR"),
]


def assert_envelope(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """protocol §9.1: {"success":false,"error":{"code","status","message","docs"}}."""
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["success"] is False
    error = body["error"]
    assert (error["code"], error["status"]) == (code, status)
    assert error["message"] and error["docs"].endswith("/" + code.lower())
    return error


@pytest.mark.parametrize(("scenario", "status", "code"), ERROR_CASES)
def test_http_error_scenarios_answer_the_protocol_envelope(client, scenario, status, code):
    assert_envelope(generate(client, f"[sim:{scenario}]"), status, code)


def test_402_names_the_model_like_example_05(client):
    error = assert_envelope(
        generate(client, "[sim:http-402]", model="claude-opus-5-5"), 402, "MODEL_NOT_IN_PLAN"
    )

    assert error["message"] == "Model not in plan: claude-opus-5-5"


def test_429_usage_window_carries_reset_and_retry_after(client):
    response = generate(client, "[sim:http-429 window=weekly]")

    error = assert_envelope(response, 429, "RATE_LIMITED")
    assert error["rateLimit"]["window"] == "weekly"
    assert abs(error["rateLimit"]["reset"] - (time.time() + 7 * 86400)) < 60
    assert "usage limit for your plan" in error["message"]
    assert response.headers["retry-after"] == str(7 * 86400)


def test_plain_429_has_no_window_marker(client):
    error = assert_envelope(generate(client, "[sim:http-429-plain]"), 429, "RATE_LIMITED")

    assert "rateLimit" not in error and "usage limit" not in error["message"]


@pytest.mark.parametrize(
    ("auth", "status"),
    [(None, 401), ("Bearer sk-not-a-command-code-key", 401), ("user_abc", 401), ("Bearer user_ok", 200)],
)
def test_authorization_must_be_a_bearer_user_key(client, auth, status):
    request_headers = {"content-type": CLI_CONTENT_TYPE} | ({"authorization": auth} if auth else {})

    response = client.post("/alpha/generate", json=envelope(), headers=request_headers)

    assert response.status_code == status


@pytest.mark.parametrize("content_type", ["text/plain", ""])
def test_content_type_must_contain_json(client, content_type):
    response = client.post(
        "/alpha/generate",
        content=json.dumps(envelope()),
        headers={"authorization": f"Bearer {KEY}", "content-type": content_type},
    )

    error = assert_envelope(response, 400, "BAD_REQUEST")
    assert "Content-Type" in error["message"]


def test_malformed_json_is_400(client):
    response = client.post("/alpha/generate", content=b"{nope", headers=headers())

    assert_envelope(response, 400, "BAD_REQUEST")


def test_max_tokens_above_cap_is_the_zod_400(client):
    error = assert_envelope(generate(client, max_tokens=200_001), 400, "BAD_REQUEST")

    assert "Too big: expected number to be <=200000" in error["message"]


def test_max_tokens_at_cap_is_accepted(client):
    assert generate(client, max_tokens=200_000).status_code == 200


def test_hash_shaped_thread_id_is_400(client):
    body = envelope() | {"threadId": "0123456789abcdef0123456789abcdef"[:8] + "-0123-0123-0123-0123456789ab"}

    response = client.post("/alpha/generate", json=body, headers=headers())

    error = assert_envelope(response, 400, "BAD_REQUEST")
    assert "Invalid UUID" in error["message"]


def test_unknown_model_is_403(client):
    error = assert_envelope(generate(client, model="gpt-4o"), 403, "FORBIDDEN")

    assert error["message"] == "Model/provider not recognized"


def test_every_catalog_model_is_accepted(client):
    for info in all_models()[:: max(1, len(all_models()) // 10)]:
        assert generate(client, model=info.id).status_code == 200, info.id


def test_key_scenario_http_401_fails_every_route(client):
    assert_envelope(generate(client, key=BAD_KEY), 401, "UNAUTHORIZED")
    assert client.get("/alpha/whoami", headers=headers(BAD_KEY)).status_code == 401
    assert generate(client).status_code == 200


def test_flaky_key_fails_first_requests_then_succeeds(client, sim):
    statuses = [generate(client, key=FLAKY_KEY).status_code for _ in range(4)]

    assert statuses == [500, 500, 200, 200]
    records = sim.app.recorder.records(key_fingerprint=key_fingerprint(FLAKY_KEY))
    assert [record.selected_by for record in records] == ["key-failure", "key-failure", "default", "default"]


def test_keys_can_be_configured_over_http(client):
    response = client.post(
        "/_sim/keys", json={"key": "user_runtime", "fail_first": 1, "fail_with": "http-529"}
    )
    assert response.json()["key_fingerprint"] == key_fingerprint("user_runtime")

    assert [generate(client, key="user_runtime").status_code for _ in range(2)] == [529, 200]
    assert client.post("/_sim/keys", json={"key": "user_x", "scenario": "nonsense"}).status_code == 400


def test_unknown_keys_can_be_refused():
    config = SimConfig(keys={"user_known": KeyBehaviour()}, accept_unknown_keys=False)
    with SimulatorThread(config) as server, httpx.Client(base_url=server.url) as http:
        refused = http.post("/alpha/generate", json=envelope(), headers=headers("user_other"))
        accepted = http.post("/alpha/generate", json=envelope(), headers=headers("user_known"))

    assert (refused.status_code, accepted.status_code) == (401, 200)


def test_requests_are_recorded_with_the_key_redacted(client):
    generate(client, "[sim:reasoning]")

    listing = client.get("/_sim/requests").json()
    assert KEY not in json.dumps(listing)
    record = listing["requests"][-1]
    assert record["path"] == "/alpha/generate" and record["method"] == "POST"
    assert ["authorization", "[redacted]"] in record["headers"]
    assert ["content-type", CLI_CONTENT_TYPE] in record["headers"]
    assert record["key_fingerprint"] == key_fingerprint(KEY)
    assert record["body"]["params"]["model"] == MODEL
    assert (record["scenario"], record["selected_by"], record["status"]) == ("reasoning", "directive", 200)
    assert record["outcome"] == "completed" and record["finish_sent"] is True
    assert record["events_sent"] == 16


def test_recorded_requests_can_be_filtered_and_cleared(client):
    generate(client)
    client.get("/alpha/whoami", headers=headers())
    first_id = client.get("/_sim/requests").json()["requests"][0]["id"]

    only_generate = client.get("/_sim/requests", params={"path": "/alpha/generate", "bodies": "0"}).json()
    later = client.get("/_sim/requests", params={"since": first_id}).json()
    assert [r["path"] for r in only_generate["requests"]] == ["/alpha/generate"]
    assert "body" not in only_generate["requests"][0]
    assert [r["path"] for r in later["requests"]] == ["/alpha/whoami"]

    assert client.delete("/_sim/requests").status_code == 200
    assert client.get("/_sim/requests").json()["requests"] == []


def _disconnect_after_lines(sim: SimulatorThread, text: str, lines: int) -> RequestRecord:
    with (
        httpx.Client(base_url=sim.url, timeout=5.0) as http,
        http.stream("POST", "/alpha/generate", json=envelope(text), headers=headers()) as response,
    ):
        received = 0
        for _line in response.iter_lines():
            received += 1
            if received == lines:
                break
    return wait_for(lambda: next((r for r in generate_records(sim) if r.outcome != "streaming"), None))


def test_stalled_stream_is_recorded_as_disconnected_when_the_client_leaves(client, sim):
    record = _disconnect_after_lines(sim, "[sim:stall after=2]", lines=4)

    assert record.outcome == "disconnected"
    assert record.events_sent == 5 and record.finish_sent is False


def test_paced_stream_stops_when_the_client_leaves(client, sim):
    record = _disconnect_after_lines(sim, "[sim:paced deltas=200 delay_ms=20]", lines=3)

    assert record.outcome == "disconnected"
    assert record.events_sent < 20


def test_stall_before_headers_is_recorded_when_the_client_gives_up(client, sim):
    with pytest.raises(httpx.ReadTimeout):
        client.post("/alpha/generate", json=envelope("[sim:stall-headers]"), headers=headers(), timeout=0.3)

    record = wait_for(lambda: next((r for r in generate_records(sim) if r.outcome != "streaming"), None))
    assert record.outcome == "disconnected" and record.status is None


def test_client_leaving_mid_body_upload_is_recorded(client, sim):
    # A request whose body never completes: the simulator notices the socket closing.
    with socket.create_connection((sim.host, sim.port)) as raw:
        raw.sendall(b"POST /alpha/generate HTTP/1.1\r\nhost: x\r\ncontent-length: 1000\r\n\r\n{")
        wait_for(lambda: generate_records(sim))
    record = wait_for(lambda: next((r for r in generate_records(sim) if r.outcome != "streaming"), None))
    assert record.outcome == "disconnected"


@pytest.mark.parametrize(
    ("path", "check"),
    [
        ("/alpha/whoami", lambda body: body["success"] and body["user"]["id"] and body["org"] is None),
        ("/alpha/whoami?limits=1", lambda body: body["success"]),
        (
            "/alpha/billing/credits",
            lambda body: body["credits"]["monthlyCredits"] > 0 and body["windowLimits"],
        ),
        ("/alpha/billing/subscriptions", lambda body: body["data"]["status"] == "active"),
        ("/alpha/usage/summary?since=x", lambda body: body["periodBasis"] == "billing-period"),
    ],
)
def test_account_routes_answer_what_the_cli_reads(client, path, check):
    response = client.get(path, headers=headers())

    assert response.status_code == 200 and check(response.json())


@pytest.mark.parametrize("path", ["/alpha/lifecycle-events", "/alpha/fingerprint/record", "/alpha/learn"])
def test_telemetry_and_other_alpha_posts_succeed(client, path):
    response = client.post(path, json={"eventType": "cli_session_exists"}, headers=headers())

    assert response.json() == {"success": True}


def test_usage_summary_counts_this_keys_generate_calls(client):
    generate(client)
    generate(client)

    assert client.get("/alpha/usage/summary", headers=headers()).json()["totalCount"] == 2


def test_model_list_is_the_catalog_without_auth(client):
    body = client.get("/provider/v1/models").json()

    assert body["object"] == "list"
    assert [entry["id"] for entry in body["data"]] == [info.id for info in all_models()]
    assert {"id", "name", "context_length"} <= set(body["data"][0])


def test_unknown_route_is_404_envelope(client):
    assert_envelope(client.get("/nope"), 404, "NOT_FOUND")


def test_generate_only_takes_post(client):
    assert_envelope(client.get("/alpha/generate", headers=headers()), 405, "METHOD_NOT_ALLOWED")
