"""Which scenario a generate request gets, and the stream plan for it.

Precedence, first match wins: a key's ``fail_first`` failures, a key's forced ``scenario``,
a ``[sim:...]`` directive in the last user message, a ``sim/<scenario>`` model, the
configured default. Parameters layer the same way: scenario defaults, then the key's
``defaults``, then the selection's own parameters.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import orjson

from proxy.upstream.simulator import scenarios as sc
from proxy.upstream.simulator.config import KeyBehaviour
from proxy.upstream.simulator.errors import RequestRejected
from proxy.upstream.simulator.events import DEFAULT_TOOL, DEFAULT_WORKING_DIR, StreamPlan


@dataclass(frozen=True, slots=True)
class Selection:
    scenario: sc.Scenario
    params: sc.SimParams
    selected_by: str  # key-failure, key, directive, model or default


def message_text(message: Mapping[str, Any]) -> str:
    """The text parts of a message, joined by newlines (string content as is, §6)."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    texts = [part.get("text", "") for part in content or [] if part.get("type") == "text"]
    return "\n".join(texts)


def last_user_text(messages: Sequence[Mapping[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            return message_text(message)
    return ""


def ends_with_tool_results(messages: Sequence[Mapping[str, Any]]) -> bool:
    """True when the last message carries tool results: a tool loop's follow-up turn."""
    return bool(messages) and messages[-1].get("role") == "tool"


def assistant_turns(messages: Sequence[Mapping[str, Any]]) -> int:
    return sum(1 for message in messages if message.get("role") == "assistant")


def _parse(text: str, source: str) -> tuple[str | None, dict[str, object]]:
    try:
        return sc.parse_selection(text)
    except sc.DirectiveError as exc:
        raise RequestRejected(400, f"simulator {source}: {exc}") from None


def _chosen(
    envelope: Mapping[str, Any], behaviour: KeyBehaviour | None, attempt: int, default: str
) -> tuple[str, str]:
    """(selection text, what selected it)."""
    params = envelope["params"]
    if behaviour is not None and attempt <= behaviour.fail_first:
        return behaviour.fail_with, "key-failure"
    if behaviour is not None and behaviour.scenario:
        return behaviour.scenario, "key"
    directive = sc.find_directive(last_user_text(params["messages"]))
    if directive is not None:
        return directive, "directive"
    if sc.is_scenario_model(params["model"]):
        return params["model"][len(sc.SCENARIO_MODEL_PREFIX) :], "model"
    return default, "default"


def select(
    envelope: Mapping[str, Any], behaviour: KeyBehaviour | None, *, attempt: int, default: str
) -> Selection:
    """The scenario for a validated envelope; ``attempt`` counts this key's generate calls."""
    text, selected_by = _chosen(envelope, behaviour, attempt, default)
    name, own = _parse(text, selected_by)
    _, key_defaults = _parse(behaviour.defaults if behaviour else "", "key defaults")
    scenario = sc.get_scenario(name or sc.DEFAULT_SCENARIO)
    return Selection(scenario, sc.resolve_params(scenario, key_defaults, own), selected_by)


def default_tool(declared: Sequence[Mapping[str, Any]]) -> str:
    """read_file when the client declares it (the CLI, §7) or declares nothing; else its first tool."""
    names = [tool.get("name") for tool in declared]
    if not names or DEFAULT_TOOL in names:
        return DEFAULT_TOOL
    return str(names[0])


def stream_plan(selection: Selection, envelope: Mapping[str, Any]) -> StreamPlan:
    params = envelope["params"]
    messages = params["messages"]
    kind = selection.scenario.kind
    sim_params = selection.params
    if kind == sc.TOOLS and sim_params.tool is None:
        sim_params = replace(sim_params, tool=default_tool(params.get("tools") or []))
    if kind == sc.TOOLS and ends_with_tool_results(messages):
        # The tool loop's second request answers in text, or a real client would loop forever.
        kind = sc.TEXT
    working_dir = envelope["config"].get("workingDir") or DEFAULT_WORKING_DIR
    return StreamPlan(
        kind=kind,
        params=sim_params,
        model=params["model"],
        echo=last_user_text(messages) if kind == sc.ECHO else "",
        working_dir=working_dir,
        turn=assistant_turns(messages),
        tool_schemas=declared_schemas(params.get("tools") or []) if kind == sc.TOOLS else (),
    )


def declared_schemas(declared: Sequence[Mapping[str, Any]]) -> tuple[tuple[str, str], ...]:
    """(name, schema JSON) of the declared tools whose schema lists properties."""
    schemas = []
    for tool in declared:
        schema = tool.get("input_schema")
        if isinstance(schema, Mapping) and schema.get("properties"):
            schemas.append(
                (str(tool.get("name")), orjson.dumps(schema, option=orjson.OPT_SORT_KEYS).decode())
            )
    return tuple(schemas)
