"""Anthropic Messages requests (``POST /v1/messages``, ``/v1/messages/count_tokens``) -> Command
Code requests (protocol §5-§7).

Every client field is mapped, dropped with a reason, or rejected with a 400 that says why.
``anthropic-version`` and ``anthropic-beta`` headers never cause an error: every version seen
live is accepted (shared/clients/README.md).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeGuard

from proxy.translate import catalog, media, session, tools
from proxy.translate.anthropic_content import Conversation, system_prompt, wire_system
from proxy.translate.catalog import ModelInfo
from proxy.translate.errors import InvalidRequest
from proxy.translate.wire import ToolDefinition, UpstreamRequest

# §5: the server caps params.max_tokens at 200000 (zod "Too big"); asking for more can never
# produce more, so larger client values are clamped instead of failing upstream.
UPSTREAM_MAX_TOKENS = 200_000
# Stop sequences are enforced by the gateway on every text delta (common.StopScanner); bound
# the work a single request can ask for.
MAX_STOP_SEQUENCES = 64
MAX_STOP_SEQUENCE_CHARS = 512


@dataclass(frozen=True, slots=True)
class MessagesRequest:
    """A translated Messages request: what to send upstream and how to answer the client."""

    upstream: UpstreamRequest
    stream: bool
    model_info: ModelInfo | None
    # Thinking blocks are returned only when the request enabled thinking (enabled/adaptive);
    # otherwise the reply holds text and tool_use blocks alone, as at Anthropic.
    show_thinking: bool = False
    # tool_choice.disable_parallel_tool_use: at most one tool_use block (enforced by the encoder).
    single_tool_call: bool = False


def parse_messages_request(
    body: Mapping[str, Any],
    headers: Mapping[str, str],
    *,
    thinking_key: bytes,
    allow_remote_images: bool = False,
) -> MessagesRequest:
    """``POST /v1/messages``: raises InvalidRequest for anything that cannot be served."""
    return _parse(body, headers, thinking_key, allow_remote_images, require_max_tokens=True)


def parse_count_tokens_request(
    body: Mapping[str, Any],
    headers: Mapping[str, str],
    *,
    thinking_key: bytes,
    allow_remote_images: bool = False,
) -> MessagesRequest:
    """``POST /v1/messages/count_tokens``: the same body, without a required max_tokens."""
    return _parse(body, headers, thinking_key, allow_remote_images, require_max_tokens=False)


def _parse(
    body: Mapping[str, Any],
    headers: Mapping[str, str],
    thinking_key: bytes,
    allow_remote_images: bool,
    *,
    require_max_tokens: bool,
) -> MessagesRequest:
    if not isinstance(body, Mapping):
        raise InvalidRequest("The request body must be a JSON object.")
    client_model = _model_name(body.get("model"))
    model_info = catalog.resolve(client_model)
    _reject_unsupported_features(body)
    stream = _optional_bool(body.get("stream"), "stream")
    max_tokens = _max_tokens(body.get("max_tokens"), required=require_max_tokens)
    translator = Conversation(thinking_key=thinking_key, allow_remote_images=allow_remote_images)
    system = system_prompt(body.get("system"))
    messages = translator.translate(body.get("messages"), system)
    tool_list = _tools(body.get("tools"))
    tool_list, tool_choice = _tool_choice(body.get("tool_choice"), tool_list)
    media.check_vision(model_info, messages, client_model=client_model)
    _drop_sampling_params(body)
    upstream = UpstreamRequest(
        model=model_info.id if model_info else client_model,
        messages=messages,
        system=wire_system(system),
        tools=tool_list,
        max_tokens=max_tokens,
        temperature=_temperature(body.get("temperature")),
        reasoning_effort=_reasoning_effort(body, model_info),
        tool_choice=tool_choice,
        stop_sequences=_stop_sequences(body.get("stop_sequences")),
        session_hint=session.session_hint(headers, _metadata_user_id(body.get("metadata"))),
        client_model=client_model,
        stream=stream,
    )
    return MessagesRequest(
        upstream=upstream,
        stream=stream,
        model_info=model_info,
        show_thinking=_thinking_enabled(body.get("thinking")),
        single_tool_call=_parallel_disabled(body.get("tool_choice")),
    )


def _thinking_enabled(value: Any) -> bool:
    return isinstance(value, Mapping) and value.get("type") in ("enabled", "adaptive")


def _parallel_disabled(value: Any) -> bool:
    if not isinstance(value, Mapping):
        return False
    flag = value.get("disable_parallel_tool_use")
    if flag is not None and not isinstance(flag, bool):
        raise InvalidRequest(
            "tool_choice.disable_parallel_tool_use must be true or false.",
            param="tool_choice.disable_parallel_tool_use",
        )
    return flag is True


def _model_name(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest("model: a model name is required.", param="model")
    return value.strip()


def _reject_unsupported_features(body: Mapping[str, Any]) -> None:
    # Remote MCP servers run inside Anthropic's API; Command Code has no equivalent.
    if body.get("mcp_servers"):
        raise InvalidRequest(
            "mcp_servers is not supported by this gateway: connect MCP servers in the client.",
            param="mcp_servers",
        )
    output_config = body.get("output_config")
    if output_config is not None and not isinstance(output_config, Mapping):
        raise InvalidRequest("output_config must be an object.", param="output_config")
    # Structured outputs: the upstream has no response-format field (§5), so a schema could
    # not be enforced; refusing beats returning text that silently ignores it.
    if body.get("output_format") is not None or (output_config or {}).get("format") is not None:
        raise InvalidRequest(
            "Structured outputs (output_config.format / output_format) are not supported by this "
            "gateway; describe the JSON you want in the prompt or use a tool.",
            param="output_config.format",
        )
    # Accepted and ignored: context_management (the gateway replays the history it is given),
    # service_tier (one tier upstream), container (only meaningful with code execution,
    # which is refused below as a server tool).


def _optional_bool(value: Any, param: str) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise InvalidRequest(f"{param} must be true or false.", param=param)
    return value


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _max_tokens(value: Any, *, required: bool) -> int | None:
    if value is None and not required:
        return None
    if not _is_int(value) or value < 1:
        raise InvalidRequest("max_tokens: a positive integer is required.", param="max_tokens")
    return int(min(value, UPSTREAM_MAX_TOKENS))


def _temperature(value: Any) -> float | None:
    if value is None:
        return None
    if not _is_number(value) or not 0 <= value <= 1:
        raise InvalidRequest("temperature must be a number between 0 and 1.", param="temperature")
    return float(value)


def _drop_sampling_params(body: Mapping[str, Any]) -> None:
    """top_p / top_k are validated, then dropped: §5 has no such fields, and the server
    ignores unknown params keys (WJF1's byte-identical test), so sending them gains nothing."""
    top_p = body.get("top_p")
    if top_p is not None and (not _is_number(top_p) or not 0 <= top_p <= 1):
        raise InvalidRequest("top_p must be a number between 0 and 1.", param="top_p")
    top_k = body.get("top_k")
    if top_k is not None and (not _is_int(top_k) or top_k < 0):
        raise InvalidRequest("top_k must be a non-negative integer.", param="top_k")


def _stop_sequences(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise InvalidRequest("stop_sequences must be a list of strings.", param="stop_sequences")
    stops = tuple(dict.fromkeys(item for item in value if item))
    if len(stops) > MAX_STOP_SEQUENCES or any(len(item) > MAX_STOP_SEQUENCE_CHARS for item in stops):
        raise InvalidRequest(
            f"At most {MAX_STOP_SEQUENCES} stop sequences of at most {MAX_STOP_SEQUENCE_CHARS} "
            "characters each are supported.",
            param="stop_sequences",
        )
    return stops


def _metadata_user_id(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise InvalidRequest("metadata must be an object.", param="metadata")
    user_id = value.get("user_id")
    if user_id is not None and not isinstance(user_id, str):
        raise InvalidRequest("metadata.user_id must be a string.", param="metadata.user_id")
    return user_id


def _reasoning_effort(body: Mapping[str, Any], model_info: ModelInfo | None) -> str | None:
    """thinking / output_config.effort -> one of the model's effort levels (§13, §14).

    Only models with an effort list take reasoning_effort (§13); for others, and for unknown
    models, nothing is sent and the upstream uses the model's default.
    """
    requested = _thinking_effort(body.get("thinking"))
    output_config = body.get("output_config") or {}
    effort = output_config.get("effort")
    if effort is not None:
        if not isinstance(effort, str) or effort not in catalog.EFFORT_RANK:
            levels = ", ".join(catalog.EFFORT_RANK)
            raise InvalidRequest(
                f"output_config.effort must be one of {levels}.", param="output_config.effort"
            )
        requested = effort  # an explicit effort wins over a thinking budget
    if requested is None or model_info is None:
        return None
    return catalog.snap_effort(requested, model_info.efforts)


def _thinking_effort(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise InvalidRequest("thinking must be an object.", param="thinking")
    kind = value.get("type")
    # `display` ("summarized"/"omitted") is accepted and ignored: the reasoning text is always
    # streamed, because the signed text is what makes reasoning replayable next turn.
    if kind == "enabled":
        budget = value.get("budget_tokens")
        if not _is_int(budget) or budget < 1:
            raise InvalidRequest(
                "thinking.budget_tokens must be a positive integer.", param="thinking.budget_tokens"
            )
        return catalog.effort_for_budget(budget)
    if kind == "adaptive":
        # Anthropic's default effort for adaptive thinking is high.
        return "high"
    if kind == "disabled":
        return None
    raise InvalidRequest("thinking.type must be enabled, adaptive or disabled.", param="thinking.type")


def _tools(value: Any) -> list[ToolDefinition]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidRequest("tools must be a list.", param="tools")
    result: list[ToolDefinition] = []
    for index, tool in enumerate(value):
        param = f"tools[{index}]"
        if not isinstance(tool, Mapping):
            raise InvalidRequest("A tool must be an object.", param=param)
        kind = tool.get("type")
        if isinstance(kind, str) and kind.startswith("tool_search_tool"):
            # Tool search only matters for defer_loading tools, and every tool is sent
            # upstream in full (there is no deferred loading there), so it has nothing to do.
            continue
        if kind not in (None, "custom"):
            raise InvalidRequest(
                f"Tool type {kind!r} is an Anthropic server or built-in tool, which Command Code "
                "cannot run; declare it as a custom tool with an input_schema instead.",
                param=f"{param}.type",
            )
        # defer_loading, cache_control, strict, eager_input_streaming, input_examples: accepted,
        # no upstream counterpart (§7 tools are name, description, input_schema).
        result.append(
            tools.tool_definition(
                tool.get("name"), tool.get("description"), tool.get("input_schema"), param=param
            )
        )
    names = [tool["name"] for tool in result]
    if len(set(names)) != len(names):
        raise InvalidRequest("Tool names must be unique.", param="tools")
    return result


def _tool_choice(
    value: Any, tool_list: list[ToolDefinition]
) -> tuple[list[ToolDefinition], dict[str, Any] | None]:
    if value is None:
        return tool_list, None
    if not isinstance(value, Mapping):
        raise InvalidRequest("tool_choice must be an object.", param="tool_choice")
    # disable_parallel_tool_use: the upstream has no such switch (§5); the encoder enforces it.
    kind = value.get("type")
    if kind == "auto":
        return tool_list, None
    if kind == "none":
        # §14: the upstream rejects {type: none}; sending no tools has the same effect.
        return [], None
    if kind not in ("any", "tool"):
        raise InvalidRequest("tool_choice.type must be auto, any, tool or none.", param="tool_choice.type")
    if not tool_list:
        raise InvalidRequest(f"tool_choice {kind!r} needs at least one tool.", param="tool_choice")
    name = value.get("name")
    if kind == "tool" and (not isinstance(name, str) or name not in {tool["name"] for tool in tool_list}):
        raise InvalidRequest("tool_choice.name must name one of the tools.", param="tool_choice.name")
    return tool_list, tools.upstream_tool_choice(kind, name if isinstance(name, str) else None)
