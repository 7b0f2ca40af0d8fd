"""The tables every surface shares: why a response stopped, usage, tool arguments, stop
sequences. Encoders import these; none of them keeps a second copy."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from proxy.translate.events import Finish, Usage
from proxy.translate.jsonfast import JSONDecodeError, dumps_str, loads


class StopKind(StrEnum):
    END = "end"
    LENGTH = "length"
    TOOL_USE = "tool_use"
    CONTENT_FILTER = "content_filter"
    PAUSE = "pause"
    STOP_SEQUENCE = "stop_sequence"


# Finishes after which the text should be the complete JSON answer (response_format checks).
JSON_CHECKED_STOPS = frozenset({StopKind.END, StopKind.PAUSE, StopKind.STOP_SEQUENCE})


def stop_kind(finish: Finish | None, *, saw_tool_calls: bool) -> StopKind:
    """Why the upstream stopped (protocol §8.4), whatever the surface.

    A response that carries client tool calls always stops for tool use: some providers report
    ``stop`` beside tool calls, and clients drop calls that end with anything else.
    """
    if saw_tool_calls:
        return StopKind.TOOL_USE
    if finish is None:
        return StopKind.END
    raw = (finish.raw_reason or "").lower()
    if finish.reason == "tool-calls":
        return StopKind.TOOL_USE
    if finish.reason == "length" or raw in ("max_tokens", "max-tokens", "max_output_tokens", "length"):
        return StopKind.LENGTH
    if raw == "pause_turn":
        return StopKind.PAUSE
    if finish.reason == "content-filter" or raw in ("refusal", "content_filter"):
        return StopKind.CONTENT_FILTER
    return StopKind.END


OPENAI_FINISH_REASONS: Mapping[StopKind, str] = {
    StopKind.END: "stop",
    StopKind.LENGTH: "length",
    StopKind.TOOL_USE: "tool_calls",
    StopKind.CONTENT_FILTER: "content_filter",
    # Chat Completions has no pause; the turn ended as far as the client can act on it.
    StopKind.PAUSE: "stop",
    StopKind.STOP_SEQUENCE: "stop",
}

ANTHROPIC_STOP_REASONS: Mapping[StopKind, str] = {
    StopKind.END: "end_turn",
    StopKind.LENGTH: "max_tokens",
    StopKind.TOOL_USE: "tool_use",
    StopKind.CONTENT_FILTER: "refusal",
    StopKind.PAUSE: "pause_turn",
    StopKind.STOP_SEQUENCE: "stop_sequence",
}


def openai_usage(usage: Usage) -> dict[str, Any]:
    """Chat Completions usage (protocol §14): prompt tokens include cache reads."""
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cache_read_tokens},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
    }


def anthropic_usage(usage: Usage) -> dict[str, Any]:
    """Messages usage (protocol §14): input_tokens is the uncached part only, so clients that
    add the cache fields back do not count cached input twice (MAXE issue #25)."""
    return {
        "input_tokens": usage.uncached_input_tokens,
        "cache_creation_input_tokens": usage.cache_write_tokens,
        "cache_read_input_tokens": usage.cache_read_tokens,
        "output_tokens": usage.output_tokens,
    }


def tool_arguments_json(arguments: Mapping[str, Any]) -> str:
    """A tool call's arguments as the JSON string OpenAI clients expect."""
    return dumps_str(arguments)


def reconcile_arguments(streamed: str, final: Mapping[str, Any]) -> tuple[str, str]:
    """(the call's arguments text, the suffix still to stream) once the upstream's final
    ``tool-call`` brought the authoritative input after ``streamed`` fragments went out.

    When the streamed text already says the same (to the letter or as JSON): that text and "".
    When it is a prefix of the authoritative JSON: that JSON and the missing suffix. Otherwise
    the authoritative JSON and "": fragments already sent cannot be taken back.
    """
    complete = tool_arguments_json(final)
    if streamed == complete or _same_json(streamed, final):
        return streamed, ""
    if complete.startswith(streamed):
        return complete, complete[len(streamed) :]
    return complete, ""


def _same_json(text: str, value: Mapping[str, Any]) -> bool:
    try:
        return bool(loads(text) == value)
    except JSONDecodeError:
        return False


class StopScanner:
    """Cuts streamed text at the first stop sequence, even one split across deltas.

    The upstream ignores stop sequences (protocol §5), so the gateway enforces them. Text that
    could be the start of a stop sequence is held back until the next delta decides.
    """

    def __init__(self, stops: tuple[str, ...]) -> None:
        self._stops = tuple(stop for stop in stops if stop)
        self._hold = max((len(stop) for stop in self._stops), default=1) - 1
        self._pending = ""
        self.matched: str | None = None

    @property
    def active(self) -> bool:
        return bool(self._stops)

    def feed(self, text: str) -> str:
        """The text that is safe to emit now; sets ``matched`` when a stop sequence is hit."""
        if not self._stops or self.matched is not None:
            return text if self.matched is None else ""
        buffer = self._pending + text
        cut = self._first_stop(buffer)
        if cut is not None:
            self._pending = ""
            return buffer[:cut]
        keep = self._held_tail(buffer)
        self._pending = buffer[len(buffer) - keep :] if keep else ""
        return buffer[: len(buffer) - keep]

    def flush(self) -> str:
        """Held-back text at the end of the stream (it was not a stop sequence after all)."""
        pending, self._pending = self._pending, ""
        return pending if self.matched is None else ""

    def _first_stop(self, buffer: str) -> int | None:
        best: int | None = None
        for stop in self._stops:
            index = buffer.find(stop)
            if index != -1 and (best is None or index < best):
                best, self.matched = index, stop
        return best

    def _held_tail(self, buffer: str) -> int:
        """Length of the longest buffer suffix that is a proper prefix of some stop sequence."""
        for size in range(min(self._hold, len(buffer)), 0, -1):
            tail = buffer[-size:]
            if any(stop.startswith(tail) for stop in self._stops):
                return size
        return 0
