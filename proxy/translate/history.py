"""Make a client's conversation acceptable upstream, as the CLI's prepareForSend does (§6).

Clients legitimately send histories the upstream rejects: a tool call whose result never came
(the user interrupted), a result whose call was trimmed away by compaction, two user turns in
a row. Both surfaces pass their translated messages through ``repair_history`` last.
"""

from __future__ import annotations

from proxy.translate.errors import InvalidRequest
from proxy.translate.wire import Part, ToolResultPart, WireMessage

# Anthropic's documented limit on messages per request, applied on both surfaces: it bounds
# the work one request can ask of the translation (every step here is linear in it).
MAX_MESSAGES = 100_000

# The CLI's own wording for a call that never got a result (protocol §6).
MISSING_RESULT_TEXT = "No result — the tool call did not complete (interrupted or lost)."


def missing_result(call_id: str, tool_name: str) -> ToolResultPart:
    return {
        "type": "tool-result",
        "toolCallId": call_id,
        "toolName": tool_name,
        "output": {"type": "text", "value": MISSING_RESULT_TEXT},
    }


def check_message_count(count: int, param: str = "messages") -> None:
    if count > MAX_MESSAGES:
        raise InvalidRequest(
            f"Too many messages: {count:,}; at most {MAX_MESSAGES:,} are accepted in one request.",
            param=param,
            code="too_many_messages",
        )


def _merge_adjacent(messages: list[WireMessage]) -> list[WireMessage]:
    """Drop empty messages and merge neighbours of the same role (§6).

    Linear: each output message owns a fresh list that later neighbours are appended to in
    place (copying the merged list on every merge made 100,000 user turns quadratic)."""
    merged: list[WireMessage] = []
    for message in messages:
        if not message["content"]:
            continue
        if merged and merged[-1]["role"] == message["role"]:
            merged[-1]["content"].extend(message["content"])
        else:
            merged.append({"role": message["role"], "content": list(message["content"])})
    return merged


def _drop_orphan_results(messages: list[WireMessage]) -> list[WireMessage]:
    """Remove tool results whose call does not appear earlier (the upstream rejects them, §14)."""
    seen_calls: set[str] = set()
    cleaned: list[WireMessage] = []
    for message in messages:
        parts: list[Part] = []
        for part in message["content"]:
            if part["type"] == "tool-call":
                seen_calls.add(part["toolCallId"])
            if part["type"] == "tool-result" and part["toolCallId"] not in seen_calls:
                continue
            parts.append(part)
        cleaned.append({"role": message["role"], "content": parts})
    return cleaned


def _answered_ids(message: WireMessage | None) -> set[str]:
    if message is None or message["role"] != "tool":
        return set()
    return {part["toolCallId"] for part in message["content"] if part["type"] == "tool-result"}


def _add_missing_results(messages: list[WireMessage]) -> list[WireMessage]:
    """Give every assistant tool call a result in the tool message that follows it (§6)."""
    repaired: list[WireMessage] = []
    for index, message in enumerate(messages):
        repaired.append(message)
        if message["role"] != "assistant":
            continue
        following = messages[index + 1] if index + 1 < len(messages) else None
        answered = _answered_ids(following)
        missing: list[Part] = [
            missing_result(part["toolCallId"], part["toolName"])
            for part in message["content"]
            if part["type"] == "tool-call" and part["toolCallId"] not in answered
        ]
        if missing:
            # Merged into the following tool message (if any) by _merge_adjacent.
            repaired.append({"role": "tool", "content": missing})
    return repaired


def repair_history(messages: list[WireMessage]) -> list[WireMessage]:
    messages = _merge_adjacent(messages)
    messages = _drop_orphan_results(messages)
    messages = _add_missing_results(messages)
    return _merge_adjacent(messages)
