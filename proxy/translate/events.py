"""Typed Command Code stream events (protocol §8.2) and the parser from NDJSON objects.

The upstream emits AI-SDK v6 ``TextStreamPart`` objects, one flat JSON object per line. Only
the events a client surface can use become types here; every other ``type`` (start,
start-step, text-start/end, finish-step, raw, source, ...) parses to ``None`` and is skipped,
as the CLI skips unknown types (§8.1).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from proxy.translate.failures import UpstreamFailure, classify_inband_error


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts of one upstream response (protocol §8.5).

    ``input_tokens`` is the total including cache reads and writes; ``output_tokens``
    includes reasoning tokens.
    """

    input_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def uncached_input_tokens(self) -> int:
        return max(0, self.input_tokens - self.cache_read_tokens - self.cache_write_tokens)

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class ReasoningStart:
    """A new reasoning block begins (interleaved-thinking models emit several per turn)."""


@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    text: str


@dataclass(frozen=True, slots=True)
class ReasoningEnd:
    pass


@dataclass(frozen=True, slots=True)
class ToolInputStart:
    """A client tool call starts streaming its arguments (``tool-input-start``)."""

    call_id: str
    name: str


@dataclass(frozen=True, slots=True)
class ToolInputDelta:
    call_id: str
    delta: str  # a raw JSON fragment of the arguments


@dataclass(frozen=True, slots=True)
class ToolCall:
    """The authoritative, complete tool call (``tool-call``); arguments parsed to an object."""

    call_id: str
    name: str
    input: Mapping[str, Any]
    provider_executed: bool = False


@dataclass(frozen=True, slots=True)
class ToolResult:
    """A result of a tool the provider ran server-side (``tool-result``, providerExecuted)."""

    call_id: str
    name: str
    output: Any


@dataclass(frozen=True, slots=True)
class Finish:
    """``finish``: the stream completed (§8.3). ``reason`` is the AI-SDK value (§8.4)."""

    reason: str
    raw_reason: str | None
    usage: Usage


@dataclass(frozen=True, slots=True)
class ProviderMetadata:
    """``provider-metadata``, seen after ``finish`` (cost, cache details)."""

    metadata: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ErrorEvent:
    """An in-band ``error`` line (§9.3), already classified."""

    failure: UpstreamFailure


@dataclass(frozen=True, slots=True)
class Abort:
    """``abort``: a clean terminal event without a finish reason (§8.3)."""

    reason: str | None


UpstreamEvent = (
    TextDelta
    | ReasoningStart
    | ReasoningDelta
    | ReasoningEnd
    | ToolInputStart
    | ToolInputDelta
    | ToolCall
    | ToolResult
    | Finish
    | ProviderMetadata
    | ErrorEvent
    | Abort
)

# Events that show the client something: after one of these, a failure can no longer be
# retried transparently (protocol §10: never retry after visible output).
VISIBLE_EVENTS = (TextDelta, ReasoningDelta, ToolInputStart, ToolInputDelta, ToolCall, ToolResult)
# Events after which the stream is complete (protocol §8.3).
TERMINAL_EVENTS = (Finish, Abort, ErrorEvent)


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def parse_usage(raw: Any) -> Usage:
    """``totalUsage`` (AI-SDK v6) with fallbacks for the deprecated mirrors (§8.5, §15.10)."""
    if not isinstance(raw, Mapping):
        return Usage()
    details = raw.get("inputTokenDetails")
    details = details if isinstance(details, Mapping) else {}
    out_details = raw.get("outputTokenDetails")
    out_details = out_details if isinstance(out_details, Mapping) else {}
    input_tokens = _int(raw.get("inputTokens")) or _int(raw.get("promptTokens"))
    output_tokens = _int(raw.get("outputTokens")) or _int(raw.get("completionTokens"))
    cache_read = _int(details.get("cacheReadTokens")) or _int(raw.get("cachedInputTokens"))
    reasoning = _int(out_details.get("reasoningTokens")) or _int(raw.get("reasoningTokens"))
    return Usage(
        input_tokens=input_tokens,
        cache_read_tokens=cache_read,
        cache_write_tokens=_int(details.get("cacheWriteTokens")),
        output_tokens=output_tokens,
        reasoning_tokens=reasoning,
    )


def _text(obj: Mapping[str, Any], key: str) -> str:
    value = obj.get(key)
    return value if isinstance(value, str) else ""


def _tool_input(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    # The CLI accepts `args` as a fallback for `input` and coerces odd shapes (§8.2).
    value = obj.get("input", obj.get("args"))
    if isinstance(value, Mapping):
        return value
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            return {"input": value}
        return parsed if isinstance(parsed, Mapping) else {"input": parsed}
    return {} if value is None else {"input": value}


def _parse_text_delta(obj: Mapping[str, Any]) -> UpstreamEvent | None:
    text = _text(obj, "text") or _text(obj, "delta")
    return TextDelta(text) if text else None


def _parse_reasoning_delta(obj: Mapping[str, Any]) -> UpstreamEvent | None:
    text = _text(obj, "text") or _text(obj, "delta")
    return ReasoningDelta(text) if text else None


def _parse_tool_input_start(obj: Mapping[str, Any]) -> UpstreamEvent | None:
    if obj.get("providerExecuted"):
        return None
    return ToolInputStart(call_id=_text(obj, "id"), name=_text(obj, "toolName"))


def _parse_tool_input_delta(obj: Mapping[str, Any]) -> UpstreamEvent | None:
    delta = _text(obj, "delta")
    return ToolInputDelta(call_id=_text(obj, "id"), delta=delta) if delta else None


def _parse_tool_call(obj: Mapping[str, Any]) -> UpstreamEvent | None:
    return ToolCall(
        call_id=_text(obj, "toolCallId"),
        name=_text(obj, "toolName"),
        input=_tool_input(obj),
        provider_executed=bool(obj.get("providerExecuted")),
    )


def _parse_tool_result(obj: Mapping[str, Any]) -> UpstreamEvent | None:
    return ToolResult(
        call_id=_text(obj, "toolCallId"),
        name=_text(obj, "toolName"),
        output=obj.get("output", obj.get("result")),
    )


def _parse_finish(obj: Mapping[str, Any]) -> UpstreamEvent | None:
    raw_reason = obj.get("rawFinishReason")
    return Finish(
        reason=_text(obj, "finishReason") or "stop",
        raw_reason=raw_reason if isinstance(raw_reason, str) else None,
        usage=parse_usage(obj.get("totalUsage", obj.get("usage"))),
    )


def _parse_provider_metadata(obj: Mapping[str, Any]) -> UpstreamEvent | None:
    metadata = obj.get("providerMetadata")
    return ProviderMetadata(metadata) if isinstance(metadata, Mapping) else None


def _parse_error(obj: Mapping[str, Any]) -> UpstreamEvent | None:
    return ErrorEvent(classify_inband_error(obj.get("error")))


def _parse_abort(obj: Mapping[str, Any]) -> UpstreamEvent | None:
    reason = obj.get("reason")
    return Abort(reason if isinstance(reason, str) else None)


_REASONING_START = ReasoningStart()
_REASONING_END = ReasoningEnd()

_PARSERS = {
    "text-delta": _parse_text_delta,
    "reasoning-start": lambda obj: _REASONING_START,
    "reasoning-delta": _parse_reasoning_delta,
    "reasoning-end": lambda obj: _REASONING_END,
    "tool-input-start": _parse_tool_input_start,
    "tool-input-delta": _parse_tool_input_delta,
    "tool-call": _parse_tool_call,
    "tool-result": _parse_tool_result,
    "finish": _parse_finish,
    "provider-metadata": _parse_provider_metadata,
    "error": _parse_error,
    "abort": _parse_abort,
}


def parse_event(obj: Any) -> UpstreamEvent | None:
    """One decoded NDJSON object -> a typed event, or None for anything a client cannot use."""
    if not isinstance(obj, dict):
        return None
    parser = _PARSERS.get(obj.get("type"))  # type: ignore[arg-type]
    return parser(obj) if parser is not None else None
