"""Golden files and the SSE invariants every golden output is checked against.

Regenerate with `pytest --update-golden`, then review the diff like code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
GOLDEN = Path(__file__).parent / "golden"


def assert_golden(request: pytest.FixtureRequest, path: Path, actual: bytes | str | dict[str, Any]) -> None:
    if isinstance(actual, dict):
        data = (json.dumps(actual, indent=2, ensure_ascii=False) + "\n").encode()
    elif isinstance(actual, str):
        data = actual.encode()
    else:
        data = actual
    if request.config.getoption("--update-golden"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return
    assert path.exists(), f"missing golden file {path.relative_to(GOLDEN.parent)}; run pytest --update-golden"
    assert data.decode() == path.read_text(encoding="utf-8")


def parse_sse(raw: bytes) -> list[tuple[str | None, str]]:
    """(event name or None, data) per SSE event; comment lines are skipped."""
    events: list[tuple[str | None, str]] = []
    assert raw.endswith(b"\n\n") or not raw, "an SSE stream must end with a blank line"
    for block in raw.decode().split("\n\n"):
        if not block:
            continue
        name, data = None, []
        for line in block.split("\n"):
            if line.startswith(":"):
                continue
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "event":
                name = value
            elif field == "data":
                data.append(value)
            else:
                raise AssertionError(f"unexpected SSE line {line!r}")
        if data:
            events.append((name, "\n".join(data)))
    return events


def check_openai_sse(raw: bytes, *, expect_error: bool = False) -> list[dict[str, Any]]:
    """Chat Completions grammar (shared/clients/README.md); returns the decoded chunks."""
    events = parse_sse(raw)
    assert all(name is None for name, _ in events), "chat completions SSE has no event: lines"
    if expect_error:
        assert "[DONE]" not in [data for _, data in events], "a failed stream ends without [DONE]"
        chunks = [json.loads(data) for _, data in events]
        assert "error" in chunks[-1], "a failed stream ends with an error chunk"
        return chunks
    assert events and events[-1][1] == "[DONE]", "[DONE] comes last"
    assert [data for _, data in events].count("[DONE]") == 1
    chunks = [json.loads(data) for _, data in events[:-1]]
    choices = [choice for chunk in chunks for choice in chunk["choices"]]
    finishes = [choice["finish_reason"] for choice in choices if choice.get("finish_reason")]
    assert len(finishes) == 1, f"exactly one finish_reason, got {finishes}"
    roles = [choice["delta"].get("role") for choice in choices if choice["delta"].get("role")]
    assert roles == ["assistant"], "role only in the first delta"
    assert choices[0]["delta"].get("role") == "assistant"
    for chunk in chunks:
        assert chunk["object"] == "chat.completion.chunk"
    _check_openai_tool_fragments(choices)
    return chunks


def _check_openai_tool_fragments(choices: list[dict[str, Any]]) -> None:
    seen: set[int] = set()
    for choice in choices:
        for call in choice["delta"].get("tool_calls") or []:
            assert isinstance(call["index"], int), "every tool-call fragment carries an integer index"
            first = call["index"] not in seen
            seen.add(call["index"])
            assert ("id" in call) == first, "id only in the first fragment of a call"
            assert ("type" in call) == first, "type only in the first fragment of a call"
            assert ("name" in call.get("function", {})) == first, "name only in the first fragment"


def check_anthropic_sse(raw: bytes, *, expect_error: bool = False) -> list[dict[str, Any]]:
    """Messages grammar (shared/clients/README.md); returns the decoded events."""
    events = parse_sse(raw)
    decoded = []
    for name, data in events:
        payload = json.loads(data)
        assert name is not None, "every Anthropic event has an event: line"
        assert payload["type"] == name, f"event name {name} must match data type {payload['type']}"
        decoded.append(payload)
    assert decoded[0]["type"] == "message_start"
    assert "usage" in decoded[0]["message"]
    if expect_error:
        assert decoded[-1]["type"] == "error"
        return decoded
    assert decoded[-1]["type"] == "message_stop", "message_stop comes last"
    assert [event["type"] for event in decoded].count("message_delta") == 1
    _check_anthropic_blocks(decoded)
    return decoded


def _check_anthropic_blocks(decoded: list[dict[str, Any]]) -> None:
    open_blocks: dict[int, str] = {}
    next_index = 0
    for event in decoded:
        kind = event["type"]
        if kind == "content_block_start":
            assert event["index"] == next_index, "block indices are 0, 1, 2, ... in start order"
            assert not open_blocks, "a block starts only after the previous one stopped"
            open_blocks[event["index"]] = event["content_block"]["type"]
            next_index += 1
        elif kind == "content_block_delta":
            assert event["index"] in open_blocks, "deltas only for an open block"
        elif kind == "content_block_stop":
            assert open_blocks.pop(event["index"], None) is not None, "stop matches a start"
        elif kind in ("message_delta", "message_stop"):
            assert not open_blocks, "every block is stopped before message_delta"
    delta = next(event for event in decoded if event["type"] == "message_delta")
    assert "stop_reason" in delta["delta"] and "usage" in delta


RESPONSES_TERMINALS = ("response.completed", "response.incomplete", "response.failed")


def check_responses_sse(raw: bytes, *, expect: str = "response.completed") -> list[dict[str, Any]]:
    """Responses grammar (shared/clients/README.md); returns the decoded events.

    Named events whose ``type`` matches, ``sequence_number`` 0, 1, 2, ..., ``response.created``
    first, exactly one terminal event and it comes last, items added before their deltas and
    done once, output indices in order.
    """
    decoded = []
    for name, data in parse_sse(raw):
        payload = json.loads(data)
        assert name is not None and payload["type"] == name, f"event {name} carries type {payload['type']}"
        decoded.append(payload)
    assert [event["sequence_number"] for event in decoded] == list(range(len(decoded)))
    assert decoded[0]["type"] == "response.created"
    terminals = [event["type"] for event in decoded if event["type"] in RESPONSES_TERMINALS]
    assert terminals == [expect] and decoded[-1]["type"] == expect, f"one terminal {expect}, got {terminals}"
    added: dict[str, int] = {}
    finished: set[str] = set()
    for event in decoded:
        if event["type"] == "response.output_item.added":
            assert event["output_index"] == len(added), "output indices are 0, 1, 2, ... in order"
            added[event["item"]["id"]] = event["output_index"]
        elif event["type"] == "response.output_item.done":
            assert event["item"]["id"] in added and event["item"]["id"] not in finished
            finished.add(event["item"]["id"])
        elif "item_id" in event:
            assert event["item_id"] in added and event["item_id"] not in finished, f"{event} outside its item"
    if expect != "response.failed":
        assert finished == set(added), "every item is done before the response ends"
        assert [item["id"] for item in decoded[-1]["response"]["output"]] == list(added)
    return decoded
