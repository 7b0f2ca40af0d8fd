"""The benchmark's scenarios: what each one sends, through the gateway and straight to the
simulator ("direct", the physical limit with zero gateway), and the exact text expected back."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from proxy.translate.wire import UpstreamRequest
from proxy.upstream.simulator.scenarios import expected_text
from proxy.upstream.wire_headers import envelope, generate_headers, thread_id

OPENAI_MODEL = "deepseek/deepseek-v4-flash"
ANTHROPIC_MODEL = "claude-sonnet-4-6"
UPSTREAM_KEY = "user_bench_0123456789abcdef"


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    title: str
    surface: str  # "openai", "anthropic" or "responses" (the gateway side)
    directive: str  # the simulator directive in the user message
    streaming: bool
    concurrency: int
    duration: float
    stagger: float = 0.0  # seconds over which the workers' starts are spread (0: all at once)

    @property
    def expected(self) -> str:
        return expected_text(self.directive)


def standard_scenarios(duration: float, slow_concurrency: tuple[int, ...]) -> list[Scenario]:
    scenarios = [
        Scenario("a", "c=1, short streams (50 deltas)", "openai", "text deltas=50", True, 1, duration),
        Scenario(
            "b", "c=32, long fast streams (300 deltas)", "openai", "text deltas=300", True, 32, duration
        ),
    ]
    for index, concurrency in enumerate(slow_concurrency):
        scenarios.append(_slow(concurrency, duration, stagger=SLOW_STREAM_SECONDS))
        if index == 0:  # the same load arriving in one instant: the thundering-herd figure
            scenarios.append(_slow(concurrency, duration, stagger=0.0))
    scenarios += [
        Scenario("d", "c=16, small non-streaming requests", "openai", "text deltas=4", False, 16, duration),
        Scenario(
            "e",
            "c=32, long fast streams via /v1/messages",
            "anthropic",
            "text deltas=300",
            True,
            32,
            duration,
        ),
        Scenario(
            "r",
            "c=32, long fast streams via /v1/responses",
            "responses",
            "text deltas=300",
            True,
            32,
            duration,
        ),
    ]
    return scenarios


SLOW_STREAM_SECONDS = 5.0  # 50 deltas, 100 ms apart


def _slow(concurrency: int, duration: float, *, stagger: float) -> Scenario:
    """Slow streams, arriving steadily (starts spread over one stream's length) or in a burst."""
    arrival = "steady arrivals" if stagger else "all arriving at once"
    return Scenario(
        f"c{concurrency}" if stagger else f"c{concurrency}-burst",
        f"c={concurrency}, slow streams (50 deltas, 100 ms apart), {arrival}",
        "openai",
        "text deltas=50 delay_ms=100",
        True,
        concurrency,
        max(duration, 12.0),
        stagger,
    )


def _user_text(scenario: Scenario) -> str:
    return f"[sim:{scenario.directive}]"


def gateway_request(scenario: Scenario, client_key: str) -> tuple[str, dict[str, str], bytes, str]:
    """(path, headers, body, body reader) of the scenario through the gateway."""
    messages = [{"role": "user", "content": _user_text(scenario)}]
    if scenario.surface == "anthropic":
        body: dict[str, Any] = {"model": ANTHROPIC_MODEL, "max_tokens": 4096, "messages": messages}
        headers = {"x-api-key": client_key, "anthropic-version": "2023-06-01"}
        path, reader = "/v1/messages", "anthropic"
    elif scenario.surface == "responses":
        body = {"model": OPENAI_MODEL, "input": messages, "store": False}
        headers = {"Authorization": f"Bearer {client_key}"}
        path, reader = "/v1/responses", "responses"
    else:
        body = {"model": OPENAI_MODEL, "messages": messages}
        headers = {"Authorization": f"Bearer {client_key}"}
        path, reader = "/v1/chat/completions", "openai"
    body["stream"] = scenario.streaming
    headers["Content-Type"] = "application/json"
    return path, headers, json.dumps(body).encode(), f"{reader}-{'sse' if scenario.streaming else 'json'}"


def direct_request(scenario: Scenario) -> tuple[str, dict[str, str], bytes, str]:
    """The same answer straight from the simulator, asked for exactly as the gateway asks."""
    upstream = UpstreamRequest(
        model=OPENAI_MODEL,
        messages=[{"role": "user", "content": [{"type": "text", "text": _user_text(scenario)}]}],
        system="",
        max_tokens=4096,
    )
    session_id = thread_id(None)
    return (
        "/alpha/generate",
        generate_headers(UPSTREAM_KEY, session_id),
        envelope(upstream, session_id),
        "ndjson",
    )


# The peer (a benchmark's second target) takes the caller's Command Code key as a bearer token on
# every surface and forwards it; it has no /v1/responses.
PEER_SURFACES = ("openai", "anthropic")


def peer_request(scenario: Scenario) -> tuple[str, dict[str, str], bytes, str]:
    """The scenario's client request as sent to the peer: the same body, the upstream key."""
    path, headers, body, reader = gateway_request(scenario, UPSTREAM_KEY)
    headers.pop("x-api-key", None)
    headers["Authorization"] = f"Bearer {UPSTREAM_KEY}"
    return path, headers, body, reader
