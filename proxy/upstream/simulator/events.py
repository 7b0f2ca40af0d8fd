"""Simulator streams: a scenario plan -> the pre-encoded NDJSON lines of protocol §8.

Pure and cached: a plan is a frozen value, and the bytes for it are built once, so serving
a stream is a few ``send`` calls. Only the ``finish-step`` line (response id and timestamp)
is encoded per request.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any

import orjson

from proxy.upstream.simulator import scenarios as sc
from proxy.upstream.simulator.tool_args import arguments_for

# protocol §8.4: the provider's raw string next to each AI-SDK finish reason.
RAW_FINISH_REASONS = {
    "stop": "stop",
    "length": "max_tokens",
    "tool-calls": "tool_calls",
    "content-filter": "content_filter",
    "error": "error",
    "other": "other",
}

# protocol §9.3: messages seen live (503) and from BRIDGE (402); others are generic.
INBAND_ERROR_MESSAGES = {
    402: "Insufficient Balance",
    429: "Rate limit exceeded",
    500: "Internal server error",
    503: "Gateway request failed",
    529: "Overloaded",
}

TEXT_ID = "txt-0"
REASONING_ID = "reasoning-0"
DEFAULT_WORKING_DIR = "/workspace"
DEFAULT_TOOL = "read_file"  # the 1.64.0 CLI's first tool (protocol §7)
SHELL_TOOL = "exec_command"  # Codex CLI 0.169 (shared/clients/codex-tooluse)
SHELL_COMMAND = "echo hello-from-tool"


@dataclass(frozen=True, slots=True)
class StreamPlan:
    """Everything a stream's bytes depend on (the cache key of ``build_script``)."""

    kind: str
    params: sc.SimParams
    model: str
    echo: str = ""  # the last user text (echo scenario only)
    working_dir: str = DEFAULT_WORKING_DIR  # config.workingDir (tool scenarios only)
    turn: int = 0  # assistant messages so far, so tool call ids differ per turn
    # (name, input schema as JSON) of each declared tool that lists properties (tool scenarios).
    tool_schemas: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class StreamScript:
    """The lines of one stream; ``finish_step`` is completed and encoded per request."""

    head: tuple[bytes, ...]
    finish_step: dict[str, Any] | None = None
    tail: tuple[bytes, ...] = ()
    stall: bool = False  # after the last line, wait until the client disconnects
    usage: dict[str, Any] | None = field(default=None, compare=False)
    # ``head`` joined into ~64 KiB pieces, with their event counts, for unpaced sending.
    head_chunks: tuple[tuple[bytes, int], ...] = field(default=(), compare=False)

    @property
    def finished(self) -> bool:
        return self.finish_step is not None

    @property
    def event_count(self) -> int:
        return len(self.head) + (1 if self.finish_step is not None else 0) + len(self.tail)


CHUNK_BYTES = 64 * 1024


def join_lines(lines: tuple[bytes, ...], limit: int = CHUNK_BYTES) -> tuple[tuple[bytes, int], ...]:
    """Lines joined into pieces of about ``limit`` bytes: many events per ASGI message."""
    chunks: list[tuple[bytes, int]] = []
    pending: list[bytes] = []
    size = 0
    for line in lines:
        pending.append(line)
        size += len(line)
        if size >= limit:
            chunks.append((b"".join(pending), len(pending)))
            pending, size = [], 0
    if pending:
        chunks.append((b"".join(pending), len(pending)))
    return tuple(chunks)


def _script(head: list[dict[str, Any]], **fields_: Any) -> StreamScript:
    lines = tuple(encode(event) for event in head)
    return StreamScript(head=lines, head_chunks=join_lines(lines), **fields_)


def encode(event: dict[str, Any]) -> bytes:
    """One NDJSON line: compact JSON and ``\\n``; no ``data:`` prefix (protocol §8.1)."""
    return orjson.dumps(event) + b"\n"


def usage_object(params: sc.SimParams, *, text_tokens: int, reasoning_tokens: int) -> dict[str, Any]:
    """AI-SDK v6 usage (protocol §8.5): inputTokens includes cache reads and writes, and
    outputTokens includes reasoning."""
    input_tokens = params.input + params.cache_read + params.cache_write
    output_tokens = text_tokens + reasoning_tokens
    return {
        "inputTokens": input_tokens,
        "inputTokenDetails": {
            "noCacheTokens": params.input,
            "cacheReadTokens": params.cache_read,
            "cacheWriteTokens": params.cache_write,
        },
        "outputTokens": output_tokens,
        "outputTokenDetails": {"textTokens": text_tokens, "reasoningTokens": reasoning_tokens},
        "totalTokens": input_tokens + output_tokens,
        "reasoningTokens": reasoning_tokens,
        "cachedInputTokens": params.cache_read,
    }


def cost_metadata(usage: dict[str, Any]) -> dict[str, Any]:
    """protocol §8.5: cost comes only in provider metadata, as a decimal string."""
    details = usage["inputTokenDetails"]
    micro_usd = (
        details["noCacheTokens"] * 0.3
        + details["cacheReadTokens"] * 0.03
        + details["cacheWriteTokens"] * 0.375
        + usage["outputTokens"] * 1.2
    )
    cost = f"{micro_usd / 1_000_000:.8f}"
    return {"gateway": {"cost": cost, "marketCost": cost}}


def _start_step(plan: StreamPlan) -> dict[str, Any]:
    # protocol §8.2: live start-step lines embed the forwarded provider request (can be MBs).
    request: dict[str, Any] = {}
    if plan.params.start_step_kb:
        padding = "x" * (plan.params.start_step_kb * 1024)
        request["body"] = orjson.dumps({"model": plan.model, "messages": [], "padding": padding}).decode()
    return {"type": "start-step", "request": request, "warnings": []}


def _text_events(texts: list[str], *, close: bool) -> list[dict[str, Any]]:
    events = [{"type": "text-delta", "id": TEXT_ID, "text": text} for text in texts]
    return events + ([{"type": "text-end", "id": TEXT_ID}] if close else [])


def _answer_events(plan: StreamPlan) -> list[dict[str, Any]]:
    """Reasoning and text, with the live order text-start before reasoning-end (§8.2)."""
    texts = sc.visible_text_pieces(plan.kind, plan.params, echo=plan.echo)
    thoughts = sc.reasoning_pieces(plan.kind, plan.params)
    # A cut-short stream (truncate, error, stall, abort) never closes its text block (example 04).
    close = plan.kind not in (sc.STALL, sc.TRUNCATE, sc.INBAND_ERROR, sc.ABORT)
    events: list[dict[str, Any]] = []
    if thoughts:
        events.append({"type": "reasoning-start", "id": REASONING_ID})
        events += [{"type": "reasoning-delta", "id": REASONING_ID, "text": text} for text in thoughts]
    if texts:
        events.append({"type": "text-start", "id": TEXT_ID})
    if thoughts:
        events.append({"type": "reasoning-end", "id": REASONING_ID})
    if texts:
        events += _text_events(texts, close=close)
    return events


def tool_input(plan: StreamPlan, name: str) -> dict[str, Any]:
    """Arguments that validate against the tool's declared schema (tool_args), paths inside the
    client's cwd; read_file without one gets such a path, so the real CLI runs it (example 03);
    Codex's exec_command gets a harmless command line it really runs; a tool whose schema lists
    no properties gets ``{"arg1": "value 1", ...}`` (``args``)."""
    if name == SHELL_TOOL:
        return {"cmd": SHELL_COMMAND}
    path = posixpath.join(plan.working_dir, plan.params.file)
    schema = dict(plan.tool_schemas).get(name)
    if schema is not None:
        return arguments_for(orjson.loads(schema), paths=path)
    if name == "read_file":
        return {"file_path": path}
    return {f"arg{index + 1}": f"value {index + 1}" for index in range(plan.params.args)}


def tool_calls(plan: StreamPlan) -> list[tuple[str, str, dict[str, Any]]]:
    """(toolCallId, toolName, input) of each call a tool scenario makes."""
    if plan.kind != sc.TOOLS:
        return []
    names = [name for name in (plan.params.tool or DEFAULT_TOOL).split(",") if name] or [DEFAULT_TOOL]
    count = 1 if plan.params.tools is None else plan.params.tools
    calls = []
    for index in range(count):
        name = names[index % len(names)]
        calls.append((f"call_sim_{plan.turn}_{index}", name, tool_input(plan, name)))
    return calls


def _tool_events(plan: StreamPlan) -> tuple[list[dict[str, Any]], int]:
    """tool-input-start/delta/end then tool-call, per call (§8.2); and the delta count."""
    events: list[dict[str, Any]] = []
    deltas = 0
    for call_id, name, arguments in tool_calls(plan):
        fragments = sc.split_text(orjson.dumps(arguments).decode(), max(1, plan.params.arg_deltas))
        events.append({"type": "tool-input-start", "id": call_id, "toolName": name})
        events += [{"type": "tool-input-delta", "id": call_id, "delta": part} for part in fragments]
        events.append({"type": "tool-input-end", "id": call_id})
        events.append({"type": "tool-call", "toolCallId": call_id, "toolName": name, "input": arguments})
        deltas += len(fragments)
    return events, deltas


def _cut_short_event(plan: StreamPlan) -> dict[str, Any] | None:
    params = plan.params
    if plan.kind == sc.INBAND_ERROR:
        status = params.status or 503
        retryable = (
            params.retryable if params.retryable is not None else (status in (408, 429) or status >= 500)
        )
        message = INBAND_ERROR_MESSAGES.get(status, "Upstream provider error")
        return {
            "type": "error",
            "error": {"message": message, "statusCode": status, "isRetryable": retryable},
        }
    if plan.kind == sc.ABORT:
        return {"type": "abort", "reason": "simulated abort"}
    return None


def _finish_events(
    plan: StreamPlan, usage: dict[str, Any], has_calls: bool
) -> tuple[dict[str, Any], tuple[bytes, ...]]:
    reason = plan.params.finish or ("tool-calls" if has_calls else "stop")
    raw = RAW_FINISH_REASONS[reason]
    metadata = cost_metadata(usage)
    finish_step = {
        "type": "finish-step",
        "response": {"id": "", "timestamp": "", "modelId": plan.model},
        "usage": usage,
        "finishReason": reason,
        "rawFinishReason": raw,
        "providerMetadata": metadata,
    }
    finish = {"type": "finish", "finishReason": reason, "rawFinishReason": raw, "totalUsage": usage}
    # protocol §8.2: provider-metadata arrives after finish.
    tail = (encode(finish), encode({"type": "provider-metadata", "providerMetadata": metadata}))
    return finish_step, tail


def _normalized(plan: StreamPlan) -> StreamPlan:
    """Drop the fields a kind ignores, so equal streams share one cache entry."""
    if plan.kind != sc.ECHO:
        plan = replace(plan, echo="")
    if plan.kind != sc.TOOLS:
        plan = replace(plan, working_dir=DEFAULT_WORKING_DIR, turn=0)
    return plan


def build_script(plan: StreamPlan) -> StreamScript:
    return _build_script_cached(_normalized(plan))


@lru_cache(maxsize=512)
def _build_script_cached(plan: StreamPlan) -> StreamScript:
    head = [{"type": "start"}, _start_step(plan), *_answer_events(plan)]
    if plan.kind == sc.STALL:
        return _script(head, stall=True)
    cut = _cut_short_event(plan)
    if plan.kind in (sc.TRUNCATE, sc.INBAND_ERROR, sc.ABORT):
        return _script(head + ([cut] if cut else []))
    tool_events, tool_deltas = _tool_events(plan)
    texts = sc.visible_text_pieces(plan.kind, plan.params, echo=plan.echo)
    thoughts = sc.reasoning_pieces(plan.kind, plan.params)
    usage = usage_object(plan.params, text_tokens=len(texts) + tool_deltas, reasoning_tokens=len(thoughts))
    finish_step, tail = _finish_events(plan, usage, bool(tool_events))
    return _script(head + tool_events, finish_step=finish_step, tail=tail, usage=usage)


def finish_step_line(script: StreamScript, *, response_id: str, timestamp: str) -> bytes:
    assert script.finish_step is not None
    event = dict(script.finish_step)
    event["response"] = {**event["response"], "id": response_id, "timestamp": timestamp}
    return encode(event)


def expected_usage(selection: str = sc.DEFAULT_SCENARIO, **overrides: object) -> dict[str, Any] | None:
    """The ``totalUsage`` a selection's ``finish`` carries (None when it sends no finish)."""
    name, params = sc.parse_selection(selection)
    scenario = sc.get_scenario(name or sc.DEFAULT_SCENARIO)
    plan = StreamPlan(scenario.kind, sc.resolve_params(scenario, params, overrides), model="sim")
    if scenario.kind in (sc.HTTP, sc.STALL_HEADERS):
        return None
    return build_script(plan).usage
