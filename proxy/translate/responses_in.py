"""OpenAI Responses request (``POST /v1/responses``) -> Command Code request (protocol §5-§7, §14).

Built on the Chat Completions translator: the same tool, effort, JSON-format and history rules,
applied to Responses *items* instead of chat messages. Choices the client can observe:

- ``instructions`` and ``system``/``developer`` messages become the upstream system text, in order.
- ``function_call`` / ``function_call_output`` items pair by ``call_id``; item ids the client made
  up are accepted as they are and never sent upstream (the upstream has no item ids).
- ``namespace`` tools (Codex groups sub-agent tools this way) are flattened to function tools
  named ``<namespace>__<name>``, a name every upstream provider accepts; calls map back to
  ``namespace`` + ``name`` on output and are flattened again on input.
- Hosted tools (``web_search``, ``file_search``, ``code_interpreter``, ...) and ``custom`` tools
  are dropped: the upstream runs no hosted tool for a client and has no free-form tools, so the
  model simply does not see them (Codex always declares ``web_search``; refusing it would make
  Codex unusable). Items those tools produced earlier (``web_search_call``) are dropped too.
- ``reasoning`` items come back as reasoning only when their ``encrypted_content`` is a seal this
  gateway made (proxy/translate/reasoning_seal.py); foreign or plain items are dropped, because
  reasoning the model did not produce here cannot be replayed faithfully.
- ``previous_response_id`` is resolved by the caller (the view owns the store): ``previous``
  carries the stored items, placed before this request's input.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from proxy.translate import catalog, media, session, tools
from proxy.translate.catalog import ModelInfo
from proxy.translate.errors import InvalidRequest
from proxy.translate.history import repair_history
from proxy.translate.openai_in import (
    EFFORTS,
    UPSTREAM_MAX_TOKENS,
    ResponseFormat,
    _arguments,
    _number,
    _reasoning_effort,
    _response_format,
    _typed,
    json_instruction,
    text_parts,
    tool_call_part,
    tool_result_part,
)
from proxy.translate.reasoning_seal import open_sealed
from proxy.translate.wire import Part, ToolDefinition, UpstreamRequest, WireMessage

NAMESPACE_SEPARATOR = "__"
ENCRYPTED_REASONING = "reasoning.encrypted_content"
# Tools the upstream cannot run for the client (module docstring): dropped, never refused.
HOSTED_TOOLS = frozenset(
    {
        "web_search",
        "web_search_preview",
        "web_search_preview_2025_03_11",
        "web_search_2025_08_26",
        "file_search",
        "code_interpreter",
        "image_generation",
        "computer_use_preview",
        "computer_use",
        "mcp",
        "local_shell",
        "shell",
        "apply_patch",
        "tool_search",
        "custom",
    }
)
# Input items produced by hosted tools; this gateway never produces them, so they carry nothing
# the upstream could use.
DROPPED_ITEMS = frozenset(
    {
        "web_search_call",
        "file_search_call",
        "image_generation_call",
        "code_interpreter_call",
        "computer_call",
        "computer_call_output",
        "mcp_list_tools",
        "mcp_call",
        "mcp_approval_request",
        "mcp_approval_response",
        "local_shell_call",
        "local_shell_call_output",
        "tool_search_call",
        "tool_search_output",
    }
)
# Accepted and dropped: the upstream has no field for them (protocol §5), or they describe
# server state this gateway does not keep (service tiers, truncation, prompt-cache retention).
DROPPED_FIELDS = (
    "top_p",
    "parallel_tool_calls",
    "store",
    "metadata",
    "client_metadata",
    "service_tier",
    "truncation",
    "safety_identifier",
    "max_tool_calls",
    "prompt_cache_retention",
    "stream_options",
    "context_management",
    "user",
)


@dataclass(frozen=True, slots=True)
class ResponsesRequest:
    """A parsed Responses request: the upstream request and what the encoder needs."""

    upstream: UpstreamRequest
    stream: bool
    store: bool
    include_encrypted_reasoning: bool
    # True when the client asked for reasoning summaries: reasoning streams as summary text.
    reasoning_summary: bool
    response_format: ResponseFormat | None
    model_info: ModelInfo | None
    # Upstream tool name -> (namespace, name) for tools flattened out of a namespace.
    namespaced: Mapping[str, tuple[str, str]]
    # Fields the response object echoes back (instructions, tools, metadata, ...).
    echo: Mapping[str, Any]
    # This request's own input items (without the previous response's), for the store.
    input_items: list[dict[str, Any]] = field(default_factory=list)


def _flat_name(namespace: Any, name: Any) -> Any:
    if isinstance(namespace, str) and namespace and isinstance(name, str):
        return f"{namespace}{NAMESPACE_SEPARATOR}{name}"
    return name


class _Items:
    """Responses input items -> the upstream system text and wire messages (§6)."""

    def __init__(self, *, reasoning_key: bytes, allow_remote_images: bool) -> None:
        self.reasoning_key = reasoning_key
        self.allow_remote_images = allow_remote_images
        self.system: list[str] = []
        self.messages: list[WireMessage] = []
        self.call_names: dict[str, str] = {}

    def add(self, item: Any, param: str) -> None:
        if not isinstance(item, Mapping):
            raise InvalidRequest("Each input item must be an object.", param=param)
        kind = item.get("type", "message")  # EasyInputMessage has no type
        if kind == "message":
            self._message(item, param)
        elif kind == "function_call":
            self._function_call(item, param)
        elif kind == "function_call_output":
            self._function_call_output(item, param)
        elif kind == "reasoning":
            self._reasoning(item)
        elif kind in DROPPED_ITEMS:
            return
        elif kind == "item_reference":
            raise InvalidRequest(
                "Item references are not supported; send the items, or use previous_response_id.",
                param=f"{param}.type",
            )
        else:
            raise InvalidRequest(f"Unsupported input item type {kind!r}.", param=f"{param}.type")

    def _message(self, item: Mapping[str, Any], param: str) -> None:
        role = item.get("role")
        content = item.get("content")
        if role in ("system", "developer"):
            texts = text_parts(content, f"{param}.content", ("input_text",))
            self.system.extend(text for text in texts if text)
        elif role == "user":
            self.messages.append({"role": "user", "content": self._user_parts(content, f"{param}.content")})
        elif role == "assistant":
            texts = text_parts(content, f"{param}.content", ("output_text", "input_text", "refusal"))
            parts: list[Part] = [{"type": "text", "text": text} for text in texts if text]
            self.messages.append({"role": "assistant", "content": parts})
        else:
            raise InvalidRequest(
                f"Unknown message role {role!r}; expected user, assistant, system or developer.",
                param=f"{param}.role",
            )

    def _user_parts(self, content: Any, param: str) -> list[Part]:
        if isinstance(content, str):
            return [{"type": "text", "text": content}] if content else []
        if not isinstance(content, list):
            raise InvalidRequest("User content must be a string or a list of content parts.", param=param)
        parts: list[Part] = []
        for index, part in enumerate(content):
            where = f"{param}[{index}]"
            kind = part.get("type") if isinstance(part, Mapping) else None
            if kind == "input_text":
                text = part.get("text")
                if not isinstance(text, str):
                    raise InvalidRequest("An input_text part needs a string 'text'.", param=f"{where}.text")
                if text:
                    parts.append({"type": "text", "text": text})
            elif kind == "input_image":
                url = part.get("image_url")  # `detail` has no upstream field
                if not isinstance(url, str):
                    raise InvalidRequest(
                        "An input_image part needs an 'image_url' (file_id is not supported).",
                        param=f"{where}.image_url",
                    )
                parts.append(
                    media.image_from_url(
                        url, param=f"{where}.image_url", allow_remote=self.allow_remote_images
                    )
                )
            else:
                raise InvalidRequest(
                    f"Unsupported content part type {kind!r}; expected input_text or input_image.",
                    param=f"{where}.type",
                )
        return parts

    def _function_call(self, item: Mapping[str, Any], param: str) -> None:
        call_id, name = item.get("call_id"), _flat_name(item.get("namespace"), item.get("name"))
        if not isinstance(call_id, str) or not call_id:
            raise InvalidRequest("A function_call needs a string 'call_id'.", param=f"{param}.call_id")
        if not isinstance(name, str) or not name:
            raise InvalidRequest("A function_call needs a string 'name'.", param=f"{param}.name")
        arguments = _arguments(item.get("arguments"), f"{param}.arguments")
        call = tool_call_part(self.call_names, call_id, name, arguments)
        self.messages.append({"role": "assistant", "content": [call]})

    def _function_call_output(self, item: Mapping[str, Any], param: str) -> None:
        call_id = item.get("call_id")
        if not isinstance(call_id, str) or not call_id:
            raise InvalidRequest("A function_call_output needs a string 'call_id'.", param=f"{param}.call_id")
        output = item.get("output")
        texts = [] if output is None else text_parts(output, f"{param}.output", ("input_text", "output_text"))
        self.messages.append({"role": "tool", "content": [tool_result_part(self.call_names, call_id, texts)]})

    def _reasoning(self, item: Mapping[str, Any]) -> None:
        text = open_sealed(item.get("encrypted_content"), self.reasoning_key)
        if text:  # foreign or plain reasoning is dropped (module docstring)
            self.messages.append({"role": "assistant", "content": [{"type": "reasoning", "text": text}]})


def _input_items(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    raw = body.get("input")
    if isinstance(raw, str):
        return [{"type": "message", "role": "user", "content": raw}]
    if not isinstance(raw, list):
        raise InvalidRequest("'input' must be a string or a list of items.", param="input")
    return [dict(item) if isinstance(item, Mapping) else item for item in raw]


def _conversation(
    body: Mapping[str, Any],
    items: list[dict[str, Any]],
    previous: Sequence[Mapping[str, Any]],
    *,
    reasoning_key: bytes,
    allow_remote_images: bool,
) -> _Items:
    conversation = _Items(reasoning_key=reasoning_key, allow_remote_images=allow_remote_images)
    instructions = body.get("instructions")
    if isinstance(instructions, str):
        if instructions:
            conversation.system.append(instructions)
    elif instructions is not None:
        raise InvalidRequest("'instructions' must be a string.", param="instructions")
    for index, item in enumerate(previous):
        conversation.add(item, f"previous_response_id[{index}]")
    for index, item in enumerate(items):
        conversation.add(item, f"input[{index}]")
    # §6, §14: the upstream rejects orphan results and unanswered calls; repair like the CLI.
    conversation.messages = repair_history(conversation.messages)
    if not conversation.messages:
        raise InvalidRequest("'input' must include at least one message with content.", param="input")
    return conversation


def _function_tool(tool: Mapping[str, Any], param: str, *, namespace: str | None = None) -> ToolDefinition:
    # `strict` is dropped: the upstream's tools have no strict flag (§7).
    return tools.tool_definition(
        _flat_name(namespace, tool.get("name")), tool.get("description"), tool.get("parameters"), param=param
    )


def _tools(body: Mapping[str, Any]) -> tuple[list[ToolDefinition], dict[str, tuple[str, str]]]:
    raw = _typed(body, "tools", list, "a list of tools") or []
    definitions: list[ToolDefinition] = []
    namespaced: dict[str, tuple[str, str]] = {}
    for index, tool in enumerate(raw):
        param = f"tools[{index}]"
        kind = tool.get("type") if isinstance(tool, Mapping) else None
        if kind == "function":
            definitions.append(_function_tool(tool, param))
        elif kind == "namespace":
            namespace = tool.get("name")
            members = tool.get("tools")
            if not isinstance(namespace, str) or not namespace or not isinstance(members, list):
                raise InvalidRequest("A namespace tool needs a 'name' and a 'tools' list.", param=param)
            for inner, member in enumerate(members):
                if not isinstance(member, Mapping) or member.get("type") != "function":
                    continue  # custom tools inside a namespace: dropped like top-level ones
                definition = _function_tool(member, f"{param}.tools[{inner}]", namespace=namespace)
                namespaced[definition["name"]] = (namespace, str(member.get("name")))
                definitions.append(definition)
        elif kind not in HOSTED_TOOLS:
            raise InvalidRequest(f"Unsupported tool type {kind!r}.", param=f"{param}.type")
    names = [definition["name"] for definition in definitions]
    if len(set(names)) != len(names):
        raise InvalidRequest("Tool names must be unique.", param="tools")
    return definitions, namespaced


def _tool_choice(
    body: Mapping[str, Any], definitions: list[ToolDefinition]
) -> tuple[list[ToolDefinition], dict[str, Any] | None]:
    """The tools to send and the upstream tool_choice (§5, §14), as on the chat surface."""
    choice = body.get("tool_choice")
    names = {definition["name"] for definition in definitions}
    if choice is None or choice == "auto":
        return definitions, None
    if choice == "none":
        return [], None  # §5: the upstream rejects {type:"none"}; send no tools instead (§14)
    if choice == "required":
        if not definitions:
            raise InvalidRequest("tool_choice 'required' needs at least one tool.", param="tool_choice")
        return definitions, tools.upstream_tool_choice("any")
    kind = choice.get("type") if isinstance(choice, Mapping) else None
    if kind == "function":
        name = _flat_name(choice.get("namespace"), choice.get("name"))
        if name not in names:
            raise InvalidRequest(
                f"tool_choice names a function not in 'tools': {name!r}.", param="tool_choice"
            )
        return definitions, tools.upstream_tool_choice("tool", name)
    if kind == "allowed_tools":
        mode, listed = choice.get("mode"), choice.get("tools")
        if mode not in ("auto", "required") or not isinstance(listed, list):
            raise InvalidRequest(
                "allowed_tools needs a mode (auto|required) and a tools list.", param="tool_choice"
            )
        subset = {_flat_name(t.get("namespace"), t.get("name")) for t in listed if isinstance(t, Mapping)}
        kept = [definition for definition in definitions if definition["name"] in subset]
        return kept, tools.upstream_tool_choice("any" if mode == "required" else "auto")
    if kind in HOSTED_TOOLS:
        return definitions, None  # the hosted tool was dropped; the model chooses among the rest
    raise InvalidRequest(
        "tool_choice must be 'auto', 'none', 'required', a function choice or allowed_tools.",
        param="tool_choice",
    )


def _reasoning(body: Mapping[str, Any], model_info: ModelInfo | None) -> tuple[str | None, bool]:
    """(upstream effort, whether summaries were asked for) from ``reasoning``."""
    reasoning = _typed(body, "reasoning", Mapping, "an object") or {}
    effort = reasoning.get("effort")
    if effort is not None and effort not in EFFORTS:
        raise InvalidRequest(
            f"'reasoning.effort' must be one of {', '.join(EFFORTS)}.", param="reasoning.effort"
        )
    summary = reasoning.get("summary", reasoning.get("generate_summary"))
    return _reasoning_effort({"reasoning_effort": effort}, model_info), summary is not None


def _text_format(body: Mapping[str, Any]) -> ResponseFormat | None:
    """``text.format`` in the flat Responses shape, checked by the chat surface's rules."""
    text = _typed(body, "text", Mapping, "an object") or {}
    raw = text.get("format")
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise InvalidRequest("'text.format' must be an object.", param="text.format")
    if raw.get("type") != "json_schema":
        return _response_format({"response_format": raw})
    spec = {key: raw.get(key) for key in ("name", "schema", "strict", "description")}
    try:
        return _response_format({"response_format": {"type": "json_schema", "json_schema": spec}})
    except InvalidRequest as exc:
        raise InvalidRequest(exc.message, param="text.format") from None


def _max_output_tokens(body: Mapping[str, Any]) -> int | None:
    value = body.get("max_output_tokens")
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InvalidRequest("'max_output_tokens' must be a positive integer.", param="max_output_tokens")
    return min(value, UPSTREAM_MAX_TOKENS)


def _include(body: Mapping[str, Any]) -> bool:
    include = _typed(body, "include", list, "a list of strings") or []
    if not all(isinstance(value, str) for value in include):
        raise InvalidRequest("'include' must be a list of strings.", param="include")
    if "message.output_text.logprobs" in include:
        raise InvalidRequest("Log probabilities are not available from this upstream.", param="include")
    return ENCRYPTED_REASONING in include


def _refuse_unsupported(body: Mapping[str, Any]) -> None:
    """Fields asking for server features this gateway does not have: a 400, not a silent drop."""
    if body.get("background"):
        raise InvalidRequest("Background responses are not supported.", param="background")
    if body.get("conversation") is not None:
        raise InvalidRequest(
            "Conversations are not supported; use previous_response_id.", param="conversation"
        )
    if body.get("prompt") is not None:
        raise InvalidRequest("Stored prompt templates are not supported.", param="prompt")
    if body.get("top_logprobs"):
        raise InvalidRequest("Log probabilities are not available from this upstream.", param="top_logprobs")


def _echoed_tool(tool: Any) -> Any:
    """A function tool as a response lists it: ``parameters`` and ``strict`` always present."""
    if isinstance(tool, Mapping) and tool.get("type") == "function":
        return {"parameters": None, "strict": None, **tool}
    return tool


def _echo(body: Mapping[str, Any], temperature: float | None, top_p: float | None) -> dict[str, Any]:
    metadata = body.get("metadata")
    text = _typed(body, "text", Mapping, "an object") or {}
    reasoning = _typed(body, "reasoning", Mapping, "an object") or {}
    return {
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "metadata": metadata if isinstance(metadata, Mapping) else {},
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": body.get("previous_response_id"),
        "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
        "temperature": 1.0 if temperature is None else temperature,
        "text": {"format": text.get("format") or {"type": "text"}},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": [_echoed_tool(tool) for tool in body.get("tools") or []],
        "top_p": 1.0 if top_p is None else top_p,
        # Strings when present, absent otherwise (the schema has no null for them).
        **{key: body[key] for key in ("user", "prompt_cache_key") if isinstance(body.get(key), str)},
    }


def parse_responses_request(
    body: Mapping[str, Any],
    headers: Mapping[str, str],
    *,
    reasoning_key: bytes,
    previous: Sequence[Mapping[str, Any]] = (),
    allow_remote_images: bool = False,
) -> ResponsesRequest:
    """A ``POST /v1/responses`` body -> ResponsesRequest; raises InvalidRequest (a 400).

    ``previous`` holds the items of the response named by ``previous_response_id`` (the caller
    resolved it), ``reasoning_key`` opens the reasoning items this gateway sealed.
    """
    if not isinstance(body, Mapping):
        raise InvalidRequest("The request body must be a JSON object.")
    name = body.get("model")
    if not isinstance(name, str) or not name.strip():
        raise InvalidRequest("'model' must be a non-empty string.", param="model")
    model_info = catalog.resolve(name)
    _refuse_unsupported(body)
    stream = bool(_typed(body, "stream", bool, "a boolean"))
    store = _typed(body, "store", bool, "a boolean") is not False  # OpenAI's default is true
    temperature = _number(body, "temperature", 0, 2)
    top_p = _number(body, "top_p", 0, 1)  # validated, then dropped (DROPPED_FIELDS)
    _typed(body, "parallel_tool_calls", bool, "a boolean")
    _typed(body, "metadata", Mapping, "an object")
    items = _input_items(body)
    conversation = _conversation(
        body, items, previous, reasoning_key=reasoning_key, allow_remote_images=allow_remote_images
    )
    media.check_vision(model_info, conversation.messages, client_model=name)
    all_tools, namespaced = _tools(body)
    definitions, tool_choice = _tool_choice(body, all_tools)
    effort, summary = _reasoning(body, model_info)
    response_format = _text_format(body)
    system = list(conversation.system)
    if response_format is not None:
        system.append(json_instruction(response_format))
    upstream = UpstreamRequest(
        model=model_info.id if model_info else name,
        messages=conversation.messages,
        system="\n\n".join(system),
        tools=definitions,
        max_tokens=_max_output_tokens(body),
        temperature=temperature,
        reasoning_effort=effort,
        tool_choice=tool_choice,
        session_hint=session.session_hint(headers, body.get("prompt_cache_key"), body.get("user")),
        client_model=name,
        stream=stream,
    )
    return ResponsesRequest(
        upstream=upstream,
        stream=stream,
        store=store,
        include_encrypted_reasoning=_include(body),
        reasoning_summary=summary,
        response_format=response_format,
        model_info=model_info,
        namespaced=namespaced,
        echo=_echo(body, temperature, top_p),
        input_items=items,
    )
