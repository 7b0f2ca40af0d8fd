"""Input-token estimates (biased high) and their per-model calibration."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from proxy import outcomes, token_calibration
from proxy.outcomes import RequestOutcome
from proxy.translate.anthropic_in import parse_count_tokens_request
from proxy.translate.events import Usage
from proxy.translate.token_count import (
    BYTES_PER_TOKEN,
    IMAGE_TOKENS,
    Calibration,
    estimate_input_tokens,
)
from proxy.translate.wire import UpstreamRequest
from tests.golden import FIXTURES

KEY = b"test-thinking-key"
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGBgAAAABQABpfZFQAAAAABJRU5ErkJggg=="


def upstream(body: dict[str, Any]) -> UpstreamRequest:
    return parse_count_tokens_request(body, {}, thinking_key=KEY).upstream


def estimate(body: dict[str, Any]) -> int:
    return estimate_input_tokens(upstream(body))


WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Get the current weather in a given location",
    "input_schema": {
        "type": "object",
        "properties": {
            "location": {"type": "string", "description": "The city and state, e.g. San Francisco, CA"}
        },
        "required": ["location"],
    },
}

# Input-token counts Anthropic's count_tokens reports for these shapes (the examples of its
# token-counting guide). The estimate must never be below them.
KNOWN_ACTUALS = [
    (
        {
            "model": "claude-sonnet-5",
            "system": "You are a scientist",
            "messages": [{"role": "user", "content": "Hello, Claude"}],
        },
        14,
    ),
    (
        {
            "model": "claude-sonnet-5",
            "tools": [WEATHER_TOOL],
            "messages": [{"role": "user", "content": "What's the weather like in San Francisco?"}],
        },
        403,
    ),
    (
        {
            "model": "claude-sonnet-5",
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "image",
                            "source": {"type": "base64", "media_type": "image/png", "data": PNG},
                        },
                        {"type": "text", "text": "Describe this image"},
                    ],
                }
            ],
        },
        1551,
    ),
]


@pytest.mark.parametrize(("body", "actual"), KNOWN_ACTUALS)
def test_estimate_is_not_below_known_actuals(body: dict[str, Any], actual: int) -> None:
    assert estimate(body) >= actual


# Dense text per tokenizer rules of thumb: prose ~4 bytes/token, code ~3.2, JSON and numbers
# ~2.8. The estimate must cover each with room to spare (biased high, never low).
SAMPLES = {
    "prose": ("The quick brown fox jumps over the lazy dog while the band plays on. " * 200, 4.0),
    "code": ("def add(a: int, b: int) -> int:\n    return a + b  # sum\n\n" * 200, 3.2),
    "json": (json.dumps([{"id": i, "ok": i % 2 == 0, "v": i * 1.5} for i in range(300)]), 2.8),
}


@pytest.mark.parametrize("sample", sorted(SAMPLES))
def test_estimate_covers_dense_text(sample: str) -> None:
    text, bytes_per_token = SAMPLES[sample]
    plausible_actual = len(text.encode()) / bytes_per_token
    assert estimate({"model": "m", "messages": [{"role": "user", "content": text}]}) >= plausible_actual


def test_non_ascii_text_counts_its_utf8_bytes() -> None:
    text = "思考と推論。" * 500  # 3000 characters, 9000 UTF-8 bytes; ~1 token per character or less
    assert estimate({"model": "m", "messages": [{"role": "user", "content": text}]}) >= 9000 / BYTES_PER_TOKEN
    assert estimate({"model": "m", "messages": [{"role": "user", "content": text}]}) >= len(text)


def test_claude_code_shaped_request_is_covered() -> None:
    body = json.loads((FIXTURES / "requests" / "anthropic" / "agent-loop.json").read_text())
    raw_bytes = len(json.dumps(body).encode())
    # Even at 3 bytes per token over the whole JSON body, the estimate stays above.
    assert estimate(body) >= raw_bytes / 3


def test_images_cost_a_flat_amount_not_their_base64_size() -> None:
    big = "A" * 2_000_000  # valid base64, 1.5 MB decoded
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": big}}
    with_image = estimate({"model": "m", "messages": [{"role": "user", "content": [image]}]})
    without = estimate(
        {"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": "."}]}]}
    )
    assert IMAGE_TOKENS <= with_image - without + 10 < 2 * IMAGE_TOKENS


def test_every_part_kind_and_tools_add_to_the_estimate() -> None:
    base: dict[str, Any] = {"model": "m", "messages": [{"role": "user", "content": "start"}]}
    baseline = estimate(base)
    conversation = [
        {"role": "user", "content": "start"},
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "t1", "name": "grep", "input": {"q": "x" * 300}}],
        },
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "y" * 300}]},
    ]
    with_tools_calls = estimate({"model": "m", "messages": conversation})
    assert with_tools_calls >= baseline + 2 * 300 / BYTES_PER_TOKEN
    assert estimate({**base, "tools": [WEATHER_TOOL]}) >= baseline + 400
    assert estimate({**base, "system": "s" * 1000}) >= baseline + 1000 / BYTES_PER_TOKEN


def test_estimate_grows_with_every_message() -> None:
    messages: list[dict[str, Any]] = []
    previous = 0
    for turn in range(6):
        messages.append({"role": "user" if turn % 2 == 0 else "assistant", "content": f"turn {turn}"})
        current = estimate({"model": "m", "messages": messages})
        assert current > previous
        previous = current


def test_calibration_starts_neutral() -> None:
    calibration = Calibration()
    assert calibration.factor("m") == 1.0
    assert calibration.estimate("m", 1000) == 1000


def test_an_under_estimate_raises_the_factor_at_once() -> None:
    calibration = Calibration()
    calibration.observe("m", estimated=1000, actual_input_tokens=1500)
    assert calibration.estimate("m", 1000) >= 1500 * 1.1 - 1
    assert calibration.estimate("other", 1000) == 1000  # per model


def test_over_estimates_lower_the_factor_only_after_enough_samples() -> None:
    calibration = Calibration()
    for _ in range(Calibration.MIN_SAMPLES - 1):
        calibration.observe("m", estimated=1000, actual_input_tokens=500)
        assert calibration.factor("m") == 1.0
    calibration.observe("m", estimated=1000, actual_input_tokens=500)
    assert calibration.factor("m") == pytest.approx(0.5 * Calibration.MARGIN)
    assert calibration.estimate("m", 2000) >= 1000


def test_factor_never_brings_an_estimate_below_recent_actuals() -> None:
    rng = random.Random(7)
    calibration = Calibration()
    recent: list[tuple[int, int]] = []
    for _ in range(200):
        estimated = rng.randint(100, 100_000)
        actual = int(estimated * rng.uniform(0.4, 1.3))
        calibration.observe("m", estimated, actual)
        recent = [*recent, (estimated, actual)][-Calibration.WINDOW :]
        for past_estimate, past_actual in recent:
            assert calibration.estimate("m", past_estimate) >= past_actual * Calibration.MARGIN - 1


def test_old_observations_age_out_of_the_window() -> None:
    calibration = Calibration()
    calibration.observe("m", 1000, 2000)
    assert calibration.factor("m") == pytest.approx(2.2)
    for _ in range(Calibration.WINDOW):
        calibration.observe("m", 1000, 600)
    assert calibration.factor("m") == pytest.approx(0.66)


def test_calibration_ignores_empty_and_clamps_absurd_observations() -> None:
    calibration = Calibration()
    calibration.observe("m", 0, 100)
    calibration.observe("m", 100, 0)
    assert calibration.factor("m") == 1.0
    calibration.observe("m", 10, 1_000_000)
    assert calibration.factor("m") == Calibration.MAX_FACTOR


def _outcome(**fields: Any) -> RequestOutcome:
    base: dict[str, Any] = {
        "surface": "anthropic",
        "principal": None,
        "client_model": "claude-sonnet-5",
        "upstream_model": "claude-sonnet-5",
        "streaming": True,
    }
    base.update(fields)
    return RequestOutcome(**base)


@pytest.fixture
def fresh_calibration(monkeypatch: pytest.MonkeyPatch) -> Calibration:
    calibration = Calibration()
    monkeypatch.setattr(token_calibration, "calibration", calibration)
    return calibration


def test_recorder_feeds_the_calibration_from_outcomes(fresh_calibration: Calibration) -> None:
    token_calibration.calibration_recorder(
        _outcome(estimated_input_tokens=1000, usage=Usage(input_tokens=1800, output_tokens=5))
    )
    assert fresh_calibration.factor("claude-sonnet-5") == pytest.approx(1.8 * Calibration.MARGIN)


@pytest.mark.parametrize(
    "fields",
    [
        {"estimated_input_tokens": None, "usage": Usage(input_tokens=100)},
        {"estimated_input_tokens": 100, "usage": None},
        {"estimated_input_tokens": 100, "usage": Usage(input_tokens=0)},
        {"estimated_input_tokens": 100, "usage": Usage(input_tokens=500), "upstream_model": ""},
    ],
)
def test_recorder_ignores_outcomes_without_both_numbers(fresh_calibration: Calibration, fields: Any) -> None:
    token_calibration.calibration_recorder(_outcome(**fields))
    assert fresh_calibration.factor("claude-sonnet-5") == 1.0


def test_calibrated_estimate_returns_calibrated_and_raw(fresh_calibration: Calibration) -> None:
    request = upstream({"model": "claude-sonnet-5", "messages": [{"role": "user", "content": "x" * 900}]})
    raw = estimate_input_tokens(request)
    assert token_calibration.calibrated_estimate(request) == (raw, raw)
    fresh_calibration.observe("claude-sonnet-5", raw, raw * 2)
    calibrated, raw_again = token_calibration.calibrated_estimate(request)
    assert raw_again == raw
    assert calibrated >= raw * 2


def test_install_registers_the_recorder_once(monkeypatch: pytest.MonkeyPatch) -> None:
    added: list[Any] = []
    monkeypatch.setattr(outcomes, "add_recorder", added.append)
    monkeypatch.setattr(token_calibration, "_installed", False)
    token_calibration.install()
    token_calibration.install()
    assert added == [token_calibration.calibration_recorder]
