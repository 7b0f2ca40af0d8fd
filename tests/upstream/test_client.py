"""The upstream client against the simulator over a real loopback socket: events, headers,
retries (only before visible output), failure classification, deadlines and disconnects."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from proxy.translate.events import Finish, ReasoningDelta, TextDelta, ToolCall, Usage
from proxy.translate.failures import FailureKind, UpstreamFailure
from proxy.translate.wire import UpstreamRequest
from proxy.upstream.client import close_upstream_client
from proxy.upstream.commandcode import Credential, open_stream
from proxy.upstream.errors import UpstreamError
from proxy.upstream.simulator.events import expected_usage
from proxy.upstream.simulator.scenarios import expected_reasoning, expected_text

MODEL = "deepseek/deepseek-v4-flash"


@dataclass
class RecordingChooser:
    """Hands out credentials in order (repeating the last) and records every report."""

    credentials: list[Credential]
    reports: list[tuple[str, UpstreamFailure | None]] = field(default_factory=list)
    chosen: int = 0

    finished: int = 0

    async def choose(self, failed: Credential | None, failure: UpstreamFailure | None) -> Credential | None:
        index = min(self.chosen, len(self.credentials) - 1)
        self.chosen += 1
        return self.credentials[index] if self.credentials else None

    async def report(self, credential: Credential, failure: UpstreamFailure | None) -> None:
        self.reports.append((credential.label, failure))

    def finish(self) -> None:
        self.finished += 1


@dataclass
class Upstream:
    simulator_url: str
    key: str

    def behave(self, **behaviour: Any) -> None:
        response = httpx.post(
            f"{self.simulator_url}/_sim/keys", json={"key": self.key, **behaviour}, timeout=10
        )
        response.raise_for_status()

    def records(self) -> list[dict[str, Any]]:
        response = httpx.get(
            f"{self.simulator_url}/_sim/requests", params={"path": "/alpha/generate"}, timeout=10
        )
        mine = [r for r in response.json()["requests"] if r["key_fingerprint"] == self.fingerprint]
        return sorted(mine, key=lambda record: record["id"])

    @property
    def fingerprint(self) -> str:
        from proxy.upstream.simulator.recorder import key_fingerprint

        return key_fingerprint(self.key)

    def chooser(self) -> RecordingChooser:
        return RecordingChooser([Credential(id=1, label="main", api_key=self.key)])


@pytest.fixture
async def upstream(simulator, settings):
    settings.CC_UPSTREAM_BASE_URL = simulator.url
    settings.CC_RETRY_BASE_DELAY = 0.01
    settings.CC_RETRY_MAX_DELAY = 0.05
    settings.CC_MAX_RETRIES = 2
    settings.CC_STATUS_PEEK_SECONDS = 1.0
    await close_upstream_client()
    yield Upstream(simulator.url, f"user_client_{uuid.uuid4().hex[:16]}")
    await close_upstream_client()


def request_for(text: str = "hi", *, model: str = MODEL, session: str | None = None) -> UpstreamRequest:
    return UpstreamRequest(
        model=model,
        messages=[{"role": "user", "content": [{"type": "text", "text": text}]}],
        system="Be brief.",
        session_hint=session,
    )


async def read_all(stream: Any, tick: float = 5.0) -> list[Any]:
    events = []
    try:
        async for batch in stream.batches(tick):
            events.extend(batch)
    finally:
        await stream.aclose()
    return events


def text_of(events: list[Any], kind: type = TextDelta) -> str:
    return "".join(event.text for event in events if isinstance(event, kind))


async def streamed_text(stream: Any) -> str:
    """The text of a whole upstream stream, read to its end and closed."""
    return text_of(await read_all(stream))


async def test_text_stream_yields_typed_events_and_usage(upstream):
    stream = await open_stream(request_for(), chooser=upstream.chooser())
    events = await read_all(stream)
    assert text_of(events) == expected_text()
    finish = [event for event in events if isinstance(event, Finish)]
    assert len(finish) == 1 and finish[0].reason == "stop"
    usage = expected_usage()
    assert stream.usage == Usage(
        input_tokens=usage["inputTokens"],
        cache_read_tokens=usage["inputTokenDetails"]["cacheReadTokens"],
        cache_write_tokens=usage["inputTokenDetails"]["cacheWriteTokens"],
        output_tokens=usage["outputTokens"],
        reasoning_tokens=usage["outputTokenDetails"]["reasoningTokens"],
    )
    assert stream.finished and stream.attempts == 1


async def test_sends_the_cli_headers_and_a_stable_thread_for_a_session(upstream, settings):
    for _ in range(2):
        await read_all(await open_stream(request_for(session="conv-1"), chooser=upstream.chooser()))
    first, second = upstream.records()
    names = [name.lower() for name, _ in first["headers"]]
    order = ["content-type", "user-agent", "x-command-code-version", "x-cli-environment", "x-project-slug"]
    order += ["x-taste-learning", "x-session-id", "authorization", "traceparent"]
    assert [name for name in names if name in order] == order
    headers = {name.lower(): value for name, value in first["headers"]}
    assert headers["user-agent"] == "cli" and headers["x-cli-environment"] == "production"
    assert headers["authorization"] == "[redacted]"  # the simulator saw a key; it never logs it
    assert first["status"] == 200 and first["outcome"] == "completed"
    assert first["body"]["threadId"] == headers["x-session-id"] == second["body"]["threadId"]
    assert uuid.UUID(first["body"]["threadId"]).version == 5


async def test_reasoning_tool_calls_and_unicode_survive_the_wire(upstream):
    events = await read_all(await open_stream(request_for("[sim:reasoning]"), chooser=upstream.chooser()))
    assert text_of(events, ReasoningDelta) == expected_reasoning()
    events = await read_all(await open_stream(request_for("[sim:tool-calls]"), chooser=upstream.chooser()))
    calls = [event for event in events if isinstance(event, ToolCall)]
    assert [call.call_id for call in calls] == ["call_sim_0_0", "call_sim_0_1", "call_sim_0_2"]
    assert [event for event in events if isinstance(event, Finish)][0].reason == "tool-calls"
    events = await read_all(await open_stream(request_for("[sim:unicode]"), chooser=upstream.chooser()))
    assert text_of(events) == expected_text("unicode")
    assert "\u2028" in text_of(events) and "\x85" in text_of(events)


async def test_a_multi_megabyte_start_step_line_is_read(upstream):
    stream = await open_stream(
        request_for("[sim:huge-start-step start_step_kb=8192]"), chooser=upstream.chooser()
    )
    assert text_of(await read_all(stream)) == expected_text()


async def test_retryable_http_failures_are_retried_then_succeed(upstream):
    upstream.behave(fail_first=2, fail_with="http-500")
    chooser = upstream.chooser()
    stream = await open_stream(request_for(), chooser=chooser)
    assert text_of(await read_all(stream)) == expected_text()
    assert stream.attempts == 3
    assert [failure.status if failure else None for _, failure in chooser.reports] == [500, 500, None]


async def test_retries_are_bounded_and_the_last_failure_is_raised(upstream, settings):
    upstream.behave(scenario="http-529")
    with pytest.raises(UpstreamError) as raised:
        await open_stream(request_for(), chooser=upstream.chooser())
    assert raised.value.failure.kind is FailureKind.OVERLOADED
    assert len(upstream.records()) == settings.CC_MAX_RETRIES + 1


@pytest.mark.parametrize(
    ("scenario", "kind", "status"),
    [
        ("http-401", FailureKind.CREDENTIAL, 401),
        ("http-402", FailureKind.MODEL, 402),
        ("http-403", FailureKind.MODEL, 403),
        ("http-429", FailureKind.WINDOW, 429),
        ("http-400", FailureKind.REQUEST, 400),
    ],
)
async def test_terminal_failures_are_not_retried(upstream, scenario, kind, status):
    upstream.behave(scenario=scenario)
    with pytest.raises(UpstreamError) as raised:
        await open_stream(request_for(), chooser=upstream.chooser())
    failure = raised.value.failure
    assert (failure.kind, failure.status) == (kind, status)
    assert upstream.key not in failure.message
    assert len(upstream.records()) == 1
    if kind is FailureKind.WINDOW:
        assert failure.retry_after and failure.retry_after > 0 and failure.reset_at


async def test_unknown_model_is_not_found(upstream):
    with pytest.raises(UpstreamError) as raised:
        await open_stream(request_for(model="nobody/nothing"), chooser=upstream.chooser())
    assert raised.value.failure.kind is FailureKind.NOT_FOUND


async def test_inband_error_before_any_output_is_retried(upstream):
    upstream.behave(fail_first=1, fail_with="error-retryable after=0")
    stream = await open_stream(request_for(), chooser=upstream.chooser())
    assert text_of(await read_all(stream)) == expected_text()
    assert stream.attempts == 2


async def test_truncated_stream_before_output_is_retried(upstream):
    upstream.behave(fail_first=1, fail_with="truncate after=0")
    stream = await open_stream(request_for(), chooser=upstream.chooser())
    assert text_of(await read_all(stream)) == expected_text()
    assert stream.attempts == 2


async def test_failure_after_visible_output_is_never_retried(upstream):
    stream = await open_stream(request_for("[sim:error-retryable after=2]"), chooser=upstream.chooser())
    events: list[Any] = []
    with pytest.raises(UpstreamError) as raised:
        async for batch in stream.batches(5.0):
            events.extend(batch)
    await stream.aclose()
    assert text_of(events) == "Hello from "  # the first two deltas of the default text
    assert raised.value.failure.kind is FailureKind.RETRYABLE and raised.value.failure.status == 503
    assert stream.attempts == 1 and len(upstream.records()) == 1


async def test_truncation_after_output_is_reported(upstream):
    stream = await open_stream(request_for("[sim:truncate after=2]"), chooser=upstream.chooser())
    with pytest.raises(UpstreamError) as raised:
        await read_all(stream)
    assert raised.value.failure.code == "stream_truncated"


async def test_abort_is_a_clean_end(upstream):
    stream = await open_stream(request_for("[sim:abort after=2]"), chooser=upstream.chooser())
    events = await read_all(stream)
    assert text_of(events) and stream.finished and stream.usage is None


async def test_no_response_headers_is_a_first_event_timeout(upstream, settings):
    settings.CC_FIRST_EVENT_TIMEOUT = 0.3
    settings.CC_MAX_RETRIES = 0
    started = time.monotonic()
    with pytest.raises(UpstreamError) as raised:
        await open_stream(request_for("[sim:stall-headers]"), chooser=upstream.chooser())
    assert raised.value.failure.kind is FailureKind.TIMEOUT
    assert time.monotonic() - started < 5
    await asyncio.sleep(0.3)
    assert upstream.records()[0]["outcome"] == "disconnected"


async def test_a_silent_stream_is_an_idle_timeout_with_keepalive_ticks(upstream, settings):
    settings.CC_IDLE_TIMEOUT = 0.6
    stream = await open_stream(request_for("[sim:stall after=1]"), chooser=upstream.chooser())
    batches: list[list[Any]] = []
    with pytest.raises(UpstreamError) as raised:
        async for batch in stream.batches(tick=0.1):
            batches.append(batch)
    await stream.aclose()
    assert raised.value.failure.kind is FailureKind.TIMEOUT
    assert "between events" in raised.value.failure.message
    assert sum(1 for batch in batches if batch == []) >= 3  # quiet ticks for keep-alives


async def test_the_first_events_go_out_before_any_keepalive_timer_is_made(upstream, settings):
    # The events that came with the response head are handed over at once; the tick's timer
    # is made only when the reader first has to wait (here: the stall after the first event).
    stream = await open_stream(request_for("[sim:stall after=1]"), chooser=upstream.chooser())
    loop = asyncio.get_running_loop()
    made: list[float] = []
    call_at = loop.call_at

    def counting_call_at(when: float, callback: Any, *args: Any) -> Any:
        if getattr(callback, "__name__", "") == "_on_tick":
            made.append(when)
        return call_at(when, callback, *args)

    loop.call_at = counting_call_at  # type: ignore[method-assign]
    try:
        batches = stream.batches(tick=0.1)
        first = await anext(batches)
        assert first and made == []
        assert await anext(batches) == []  # a quiet tick once the reader waited
        assert len(made) >= 1
        await batches.aclose()
    finally:
        del loop.call_at
        await stream.aclose()


async def test_without_a_tick_a_silent_stream_yields_no_empty_batches(upstream, settings):
    # The non-streaming reader (collect) sends no keep-alives, so it asks for no ticks.
    settings.CC_IDLE_TIMEOUT = 0.5
    stream = await open_stream(request_for("[sim:stall after=1]"), chooser=upstream.chooser())
    batches: list[list[Any]] = []
    with pytest.raises(UpstreamError) as raised:
        async for batch in stream.batches(tick=None):
            batches.append(batch)
    await stream.aclose()
    assert raised.value.failure.kind is FailureKind.TIMEOUT
    assert batches and all(batches)


async def test_the_idle_deadline_counts_from_the_last_event_not_the_first(upstream, settings):
    # 10 events 100 ms apart take a second, three idle deadlines: none of them passes.
    settings.CC_IDLE_TIMEOUT = 0.35
    directive = "paced deltas=10 delay_ms=100"
    stream = await open_stream(request_for(f"[sim:{directive}]"), chooser=upstream.chooser())
    assert text_of(await read_all(stream)) == expected_text(directive)
    assert stream.failure is None and stream.finished


async def test_total_deadline_caps_a_slow_stream(upstream, settings):
    settings.CC_TOTAL_TIMEOUT = 0.5
    stream = await open_stream(request_for("[sim:paced deltas=50 delay_ms=50]"), chooser=upstream.chooser())
    with pytest.raises(UpstreamError) as raised:
        await read_all(stream)
    assert "whole response" in raised.value.failure.message


async def test_closing_the_stream_disconnects_the_upstream_at_once(upstream):
    stream = await open_stream(request_for("[sim:stall after=1]"), chooser=upstream.chooser())
    await stream.aclose()
    for _ in range(50):
        if upstream.records()[0]["outcome"] == "disconnected":
            break
        await asyncio.sleep(0.05)
    assert upstream.records()[0]["outcome"] == "disconnected"


async def test_cancelling_while_opening_disconnects_the_upstream(upstream):
    task = asyncio.ensure_future(open_stream(request_for("[sim:stall-headers]"), chooser=upstream.chooser()))
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for _ in range(50):
        if upstream.records() and upstream.records()[0]["outcome"] == "disconnected":
            break
        await asyncio.sleep(0.05)
    assert upstream.records()[0]["outcome"] == "disconnected"


async def test_no_credential_gives_up_cleanly(upstream):
    from proxy.upstream.commandcode import CredentialChooser  # noqa: F401  (the protocol exists)

    with pytest.raises(UpstreamError) as raised:
        await open_stream(request_for(), chooser=RecordingChooser([]))
    assert raised.value.failure.code == "no_upstream_credential"


async def test_credential_repr_never_shows_the_key(upstream):
    assert upstream.key not in repr(Credential(id=1, label="main", api_key=upstream.key))


async def first_token_batches(upstream: Upstream, *, stream: bool) -> tuple[list[Any], list[list[Any]]]:
    """(the batch holding the first token, the batches) of a short reply read to its end."""
    request = request_for()
    request.stream = stream
    opened = await open_stream(request, chooser=upstream.chooser())
    try:
        batches = [batch async for batch in opened.batches(5.0)]
    finally:
        await opened.aclose()
    assert text_of([event for batch in batches for event in batch]) == expected_text()
    return next(batch for batch in batches if any(isinstance(e, TextDelta) for e in batch)), batches


async def test_a_streamed_replys_first_token_is_handed_over_before_the_rest_of_its_chunk(upstream):
    # The simulator writes a whole short reply at once: the reader still hands the first
    # visible event to the response side before it parses the deltas that came with it.
    first, _ = await first_token_batches(upstream, stream=True)
    assert isinstance(first[-1], TextDelta) and sum(isinstance(e, TextDelta) for e in first) == 1


async def test_a_whole_reply_is_parsed_without_that_extra_turn(upstream):
    first, _ = await first_token_batches(upstream, stream=False)  # nobody sees a first token early
    assert sum(isinstance(e, TextDelta) for e in first) > 1


async def test_closing_in_the_hand_over_turn_still_takes_in_the_rest_of_the_chunk(upstream):
    # The simulator writes a short reply (its finish and usage included) in one chunk; a
    # response side that ends the reply on its first token (a stop sequence) closes the
    # stream in the turn the token was handed over in. What came with the token is still
    # taken in, as when the chunk was parsed whole: the reply is billed by its real usage.
    request = request_for()
    request.stream = True
    stream = await open_stream(request, chooser=upstream.chooser())
    async for batch in stream.batches(5.0):
        assert [type(event) for event in batch][-1] is TextDelta
        break
    await stream.aclose()
    assert stream.finished and stream.usage is not None
    assert stream.usage.output_tokens == expected_usage()["outputTokens"]
