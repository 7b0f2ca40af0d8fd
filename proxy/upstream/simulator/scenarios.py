"""Simulator scenarios: names, parameters, directive parsing and the deterministic texts.

Pure (stdlib only), so the benchmark and tests can import ``expected_text`` and friends to
verify a stream exactly. The scenario reference lives in ``proxy/upstream/simulator/app.py``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

SCENARIO_MODEL_PREFIX = "sim/"
DEFAULT_SCENARIO = "text"

# Kinds decide the stream's structure; scenario names are presets of a kind plus defaults.
TEXT = "text"
REASONING = "reasoning"
TOOLS = "tools"
ECHO = "echo"
UNICODE = "unicode"
STALL = "stall"
STALL_HEADERS = "stall-headers"
TRUNCATE = "truncate"
INBAND_ERROR = "error"
ABORT = "abort"
HTTP = "http"

# The words a text stream is made of: delta i is WORDS[i % 16], so 4 deltas read
# "Hello from the simulator." and any count is easy to rebuild exactly.
WORDS = (
    "Hello",
    "from",
    "the",
    "simulator",
    "alpha",
    "bravo",
    "charlie",
    "delta",
    "echo",
    "foxtrot",
    "golf",
    "hotel",
    "india",
    "juliet",
    "kilo",
    "lima",
)

# Text that breaks naive stream readers: multi-byte UTF-8, an emoji, and U+2028, U+2029 and
# U+0085, which str.splitlines() (and httpx.aiter_lines) treat as line ends (STYLE §3).
UNICODE_WORDS = (
    "Grüße",
    "日本語",
    "🙂",
    "line\u2028sep",
    "para\u2029sep",
    "next\x85line",
    'quote"d',
    "back\\slash",
    "tab\there",
    "new\nline",
)

MAX_DELTAS = 100_000
MAX_DELAY_MS = 3_600_000
MAX_TOOLS = 64
MAX_START_STEP_KB = 64 * 1024


class DirectiveError(ValueError):
    """A simulator directive or scenario name the simulator does not understand."""


@dataclass(frozen=True, slots=True)
class SimParams:
    """Every knob a scenario takes; ``None`` means "the scenario's default"."""

    deltas: int | None = None  # text deltas (echo: at most this many pieces)
    reasoning_deltas: int | None = None
    delay_ms: int = 0  # pause between deltas (paced stream); other events ride with a delta
    first_delay_ms: int = 0  # pause after the 200 headers, before the first event
    headers_delay_ms: int = 0  # pause before the response headers
    after: int | None = None  # stall/truncate/error/abort: text deltas sent first
    tools: int | None = None  # parallel tool calls
    tool: str | None = None  # tool name or comma list cycled over the calls (None: see sim_select)
    file: str = "README.md"  # read_file's file, relative to config.workingDir
    args: int = 1  # string arguments of a tool other than read_file
    arg_deltas: int = 2  # tool-input-delta fragments per call
    status: int | None = None  # HTTP or in-band error status
    retryable: bool | None = None  # in-band error isRetryable
    window: str = "fiveHour"  # http-429 usage window (protocol §9.2)
    start_step_kb: int = 0  # padding inside start-step request.body
    input: int = 100  # uncached input tokens
    cache_read: int = 0
    cache_write: int = 0
    finish: str | None = None  # finishReason override (protocol §8.4)


# With postponed annotations, dataclass field types are the annotation strings.
_INT_PARAMS = frozenset(f.name for f in fields(SimParams) if f.type in ("int | None", "int"))
_STR_PARAMS = frozenset(f.name for f in fields(SimParams) if f.type in ("str | None", "str"))
_LIMITS = {
    "deltas": MAX_DELTAS,
    "reasoning_deltas": MAX_DELTAS,
    "after": MAX_DELTAS,
    "delay_ms": MAX_DELAY_MS,
    "first_delay_ms": MAX_DELAY_MS,
    "headers_delay_ms": MAX_DELAY_MS,
    "tools": MAX_TOOLS,
    "args": MAX_TOOLS,
    "arg_deltas": 1_000,
    "status": 599,
    "start_step_kb": MAX_START_STEP_KB,
    "input": 10**9,
    "cache_read": 10**9,
    "cache_write": 10**9,
}
WINDOWS = ("fiveHour", "weekly", "daily")
FINISH_REASONS = ("stop", "length", "content-filter", "tool-calls", "error", "other")


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    kind: str
    defaults: Mapping[str, object]


def _preset(name: str, kind: str, **defaults: object) -> Scenario:
    return Scenario(name, kind, defaults)


_PRESETS = (
    _preset("text", TEXT),
    _preset("text-only", TEXT),  # the STYLE guide's name for example 01
    _preset("long", TEXT, deltas=1000),
    _preset("paced", TEXT, deltas=20, delay_ms=50),
    _preset("slow", TEXT, first_delay_ms=2000),
    _preset("length", TEXT, finish="length"),
    _preset("huge-start-step", TEXT, start_step_kb=4096),
    _preset("reasoning", REASONING),
    _preset("cache-usage", REASONING, input=212, cache_read=1792, cache_write=256),
    _preset("tool-call", TOOLS, tools=1),
    _preset("tool-calls", TOOLS, tools=3),
    _preset("echo", ECHO),
    _preset("unicode", UNICODE, deltas=10),
    _preset("stall", STALL, after=1),
    _preset("stall-headers", STALL_HEADERS),
    _preset("truncate", TRUNCATE, after=2),
    _preset("error-retryable", INBAND_ERROR, after=1, status=503, retryable=True),
    _preset("error-midstream", INBAND_ERROR, after=1, status=503, retryable=True),  # example 04's name
    _preset("error-fatal", INBAND_ERROR, after=1, status=402, retryable=False),
    _preset("abort", ABORT, after=2),
    _preset("http-401", HTTP, status=401),
    _preset("http-402", HTTP, status=402),
    _preset("http-403", HTTP, status=403),
    _preset("http-429", HTTP, status=429),
    _preset("http-429-plain", HTTP, status=429, retryable=True),
    _preset("http-500", HTTP, status=500),
    _preset("http-529", HTTP, status=529),
)
SCENARIOS: dict[str, Scenario] = {scenario.name: scenario for scenario in _PRESETS}
_GENERIC_HTTP = re.compile(r"http-([45]\d\d)")
_DIRECTIVE = re.compile(r"\[sim:([^\]]*)\]")


def get_scenario(name: str) -> Scenario:
    """The preset called ``name``; ``http-NNN`` works for any 4xx/5xx status."""
    scenario = SCENARIOS.get(name)
    if scenario is not None:
        return scenario
    match = _GENERIC_HTTP.fullmatch(name)
    if match:
        return Scenario(name, HTTP, {"status": int(match.group(1))})
    raise DirectiveError(f"unknown simulator scenario {name!r}")


def is_scenario_model(model: str) -> bool:
    """True for ``sim/<scenario>`` model ids the simulator accepts as known models."""
    if not model.startswith(SCENARIO_MODEL_PREFIX):
        return False
    try:
        get_scenario(model[len(SCENARIO_MODEL_PREFIX) :])
    except DirectiveError:
        return False
    return True


def scenario_models() -> list[str]:
    return [SCENARIO_MODEL_PREFIX + name for name in SCENARIOS]


def _parse_bool(key: str, raw: str) -> bool:
    lowered = raw.lower()
    if lowered in ("1", "true", "yes"):
        return True
    if lowered in ("0", "false", "no"):
        return False
    raise DirectiveError(f"parameter {key} must be true or false, not {raw!r}")


def _parse_int(key: str, raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise DirectiveError(f"parameter {key} must be an integer, not {raw!r}") from None
    if value < 0 or value > _LIMITS.get(key, MAX_DELTAS):
        raise DirectiveError(f"parameter {key}={value} is out of range 0..{_LIMITS.get(key, MAX_DELTAS)}")
    return value


def _parse_str(key: str, raw: str) -> str:
    if key == "window" and raw not in WINDOWS:
        raise DirectiveError(f"window must be one of {', '.join(WINDOWS)}")
    if key == "finish" and raw not in FINISH_REASONS:
        raise DirectiveError(f"finish must be one of {', '.join(FINISH_REASONS)}")
    if not raw:
        raise DirectiveError(f"parameter {key} is empty")
    return raw


def parse_param(key: str, raw: str) -> object:
    if key == "retryable":
        return _parse_bool(key, raw)
    if key in _INT_PARAMS:
        return _parse_int(key, raw)
    if key in _STR_PARAMS:
        return _parse_str(key, raw)
    raise DirectiveError(f"unknown simulator parameter {key!r}")


def parse_params(tokens: list[str]) -> dict[str, object]:
    """``["deltas=3", "delay_ms=10"]`` -> ``{"deltas": 3, "delay_ms": 10}``."""
    params: dict[str, object] = {}
    for token in tokens:
        key, sep, raw = token.partition("=")
        if not sep:
            raise DirectiveError(f"expected key=value, got {token!r}")
        params[key] = parse_param(key, raw)
    return params


def parse_selection(text: str) -> tuple[str | None, dict[str, object]]:
    """``"tool-call deltas=3"`` or ``"[sim:tool-call deltas=3]"`` -> (name, params).

    The name is None when the text holds parameters only (``"delay_ms=5"``).
    """
    text = text.strip()
    match = _DIRECTIVE.fullmatch(text)
    tokens = (match.group(1) if match else text).split()
    if not tokens:
        return None, {}
    name = None if "=" in tokens[0] else tokens.pop(0)
    if name is not None:
        get_scenario(name)
    return name, parse_params(tokens)


def find_directive(text: str) -> str | None:
    """The body of the first ``[sim:...]`` directive in a message text, if any."""
    match = _DIRECTIVE.search(text)
    return match.group(1) if match else None


def strip_directives(text: str) -> str:
    return _DIRECTIVE.sub("", text).strip()


def resolve_params(scenario: Scenario, *layers: Mapping[str, object]) -> SimParams:
    """The scenario's defaults, overridden by each layer in turn (later wins)."""
    merged: dict[str, Any] = dict(scenario.defaults)
    for layer in layers:
        merged.update(layer)
    return replace(SimParams(), **merged)


def text_deltas(count: int) -> list[str]:
    """The text pieces of a ``count``-delta answer: words, space-separated, ending in "."."""
    return [WORDS[i % len(WORDS)] + (" " if i < count - 1 else ".") for i in range(count)]


def unicode_deltas(count: int) -> list[str]:
    return [UNICODE_WORDS[i % len(UNICODE_WORDS)] + (" " if i < count - 1 else ".") for i in range(count)]


def reasoning_deltas(count: int) -> list[str]:
    return [f"Thought {i + 1}." + (" " if i < count - 1 else "") for i in range(count)]


def split_text(text: str, pieces: int) -> list[str]:
    """``text`` in at most ``pieces`` non-empty, nearly equal parts (echo scenario)."""
    pieces = max(1, min(pieces, len(text)))
    size, extra = divmod(len(text), pieces)
    parts, start = [], 0
    for index in range(pieces):
        end = start + size + (1 if index < extra else 0)
        parts.append(text[start:end])
        start = end
    return parts


ECHO_EMPTY = "(empty message)"
DEFAULT_DELTAS = 4
DEFAULT_REASONING_DELTAS = 3


def echo_text(last_user_text: str) -> str:
    """What the echo scenario answers: the last user text without directives, stripped."""
    return strip_directives(last_user_text) or ECHO_EMPTY


def visible_text_pieces(kind: str, params: SimParams, *, echo: str = "") -> list[str]:
    """The text deltas a scenario streams (cut short for stall/truncate/error/abort)."""
    count = DEFAULT_DELTAS if params.deltas is None else params.deltas
    if kind == HTTP or kind == STALL_HEADERS:
        return []
    if kind == ECHO:
        return split_text(echo_text(echo), count)
    pieces = unicode_deltas(count) if kind == UNICODE else text_deltas(count)
    if kind in (STALL, TRUNCATE, INBAND_ERROR, ABORT):
        after = 1 if params.after is None else params.after
        return pieces[:after]
    return pieces


def reasoning_pieces(kind: str, params: SimParams) -> list[str]:
    if kind != REASONING:
        return []
    count = DEFAULT_REASONING_DELTAS if params.reasoning_deltas is None else params.reasoning_deltas
    return reasoning_deltas(count)


def _selection_params(selection: str, overrides: Mapping[str, object]) -> tuple[Scenario, SimParams]:
    name, params = parse_selection(selection)
    scenario = get_scenario(name or DEFAULT_SCENARIO)
    return scenario, resolve_params(scenario, params, overrides)


def expected_text(selection: str = DEFAULT_SCENARIO, *, echo: str = "", **overrides: object) -> str:
    """The exact visible text a selection streams, e.g. ``expected_text("long deltas=300")``.

    ``selection`` is a scenario name, a directive body or a whole ``[sim:...]`` directive;
    keyword overrides win over it. For ``echo`` pass the last user message's text. Tool
    scenarios answer this same text on the turn that carries the tool results.
    """
    scenario, params = _selection_params(selection, overrides)
    return "".join(visible_text_pieces(scenario.kind, params, echo=echo))


def expected_reasoning(selection: str = "reasoning", **overrides: object) -> str:
    scenario, params = _selection_params(selection, overrides)
    return "".join(reasoning_pieces(scenario.kind, params))
