"""OpenAI Chat Completions request -> Command Code request (protocol §5-§7, §14).

Every field of ``CreateChatCompletionRequest`` gets a deliberate choice: mapped, dropped with
the reason, or refused with a 400 that names the parameter. Refusals are for fields whose
effect the gateway cannot deliver (several choices, log probabilities, audio, predicted
outputs); silently ignoring those would hand the client an answer it did not ask for.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from proxy.translate import catalog, media, session, tools
from proxy.translate.catalog import ModelInfo
from proxy.translate.errors import InvalidRequest
from proxy.translate.history import check_message_count, repair_history
from proxy.translate.jsonfast import JSONDecodeError, dumps_str, loads
from proxy.translate.wire import Part, ToolCallPart, ToolDefinition, UpstreamRequest, WireMessage

# §5: the server rejects max_tokens above this (zod "Too big: expected number to be <=200000").
UPSTREAM_MAX_TOKENS = 200_000
MAX_STOP_SEQUENCES = 4
EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "max")
_SCHEMA_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

# Fields that change nothing the gateway can honour; accepted and dropped (protocol §5: the
# upstream has no field for them, and WJF1 saw it ignore top_p/parallel_tool_calls anyway).
# seed: best-effort determinism even at OpenAI; clients send it for reproducible runs and must
# not be refused for it. logit_bias: token ids are tokenizer-specific, meaningless across the
# upstream's many providers. store/metadata/service_tier/moderation/prompt-cache options: the
# gateway stores nothing and has one tier; the upstream caches prompts on its own (§5).
DROPPED_FIELDS = (
    "top_p",
    "frequency_penalty",
    "presence_penalty",
    "seed",
    "logit_bias",
    "store",
    "metadata",
    "service_tier",
    "verbosity",
    "safety_identifier",
    "moderation",
    "prompt_cache_options",
    "prompt_cache_retention",
)


@dataclass(frozen=True, slots=True)
class ResponseFormat:
    """``response_format`` json_object / json_schema; the gateway checks the output is JSON."""

    type: Literal["json_object", "json_schema"]
    name: str | None = None
    schema: Mapping[str, Any] | None = None
    strict: bool = False
    description: str | None = None

    @property
    def wants_object(self) -> bool:
        if self.type == "json_object":
            return True
        return self.schema is not None and self.schema.get("type") == "object"


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """A parsed Chat Completions request: the upstream request and what the encoder needs."""

    upstream: UpstreamRequest
    stream: bool
    include_usage: bool
    response_format: ResponseFormat | None
    model_info: ModelInfo | None
    # False: at most one tool call reaches the client (enforced by the encoder, §5 has no switch).
    parallel_tool_calls: bool = True


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _typed(body: Mapping[str, Any], key: str, kind: type, what: str) -> Any:
    """``body[key]`` when it is None or of ``kind`` (a bool is not a number here); else a 400."""
    value = body.get(key)
    wrong_bool = isinstance(value, bool) and kind is not bool
    if value is not None and (wrong_bool or not isinstance(value, kind)):
        raise InvalidRequest(f"'{key}' must be {what}.", param=key)
    return value


def _number(body: Mapping[str, Any], key: str, low: float, high: float) -> float | None:
    value = body.get(key)
    if value is None:
        return None
    if not _is_number(value) or not low <= value <= high:
        raise InvalidRequest(f"'{key}' must be a number between {low:g} and {high:g}.", param=key)
    return float(value)


def _max_tokens(body: Mapping[str, Any]) -> int | None:
    # max_completion_tokens replaces the deprecated max_tokens; it wins when both are sent.
    for key in ("max_completion_tokens", "max_tokens"):
        value = body.get(key)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise InvalidRequest(f"'{key}' must be a positive integer.", param=key)
        return min(value, UPSTREAM_MAX_TOKENS)
    return None


def _stop_sequences(body: Mapping[str, Any]) -> tuple[str, ...]:
    stop = body.get("stop")
    if stop is None:
        return ()
    if isinstance(stop, str):
        return (stop,) if stop else ()
    if (
        not isinstance(stop, list)
        or len(stop) > MAX_STOP_SEQUENCES
        or not all(isinstance(item, str) for item in stop)
    ):
        raise InvalidRequest(
            f"'stop' must be a string or a list of at most {MAX_STOP_SEQUENCES} strings.", param="stop"
        )
    return tuple(item for item in stop if item)


def _refuse_unsupported(body: Mapping[str, Any]) -> None:
    """Fields asking for something the upstream cannot produce: a 400, not a silent drop."""
    n = body.get("n")
    if n is not None and n != 1:
        raise InvalidRequest("Only n=1 is supported: the upstream returns one choice.", param="n")
    if body.get("logprobs"):
        raise InvalidRequest("Log probabilities are not available from this upstream.", param="logprobs")
    if body.get("top_logprobs"):
        raise InvalidRequest("Log probabilities are not available from this upstream.", param="top_logprobs")
    if body.get("audio") is not None:
        raise InvalidRequest("Audio output is not supported; only text is.", param="audio")
    modalities = body.get("modalities")
    if modalities is not None and (not isinstance(modalities, list) or set(modalities) - {"text"}):
        raise InvalidRequest("Only the 'text' output modality is supported.", param="modalities")
    if body.get("prediction") is not None:
        raise InvalidRequest("Predicted outputs are not supported.", param="prediction")
    if body.get("web_search_options") is not None:
        raise InvalidRequest("Web search is not available through this gateway.", param="web_search_options")
    for key in ("functions", "function_call"):
        if body.get(key) is not None:
            raise InvalidRequest(f"'{key}' is deprecated and not supported; use 'tools'.", param=key)


def text_parts(content: Any, param: str, allowed: tuple[str, ...] = ("text",)) -> list[str]:
    """The texts of a string or a list of text parts of the ``allowed`` types (Chat and
    Responses): ``refusal`` parts carry their text in ``refusal``, every other kind in ``text``."""
    if isinstance(content, str):
        return [content]
    if not isinstance(content, list):
        raise InvalidRequest("Message content must be a string or a list of content parts.", param=param)
    texts: list[str] = []
    for index, part in enumerate(content):
        kind = part.get("type") if isinstance(part, Mapping) else None
        if kind not in allowed:
            raise InvalidRequest(
                f"Unsupported content part type {kind!r} here; expected {' or '.join(allowed)}.",
                param=f"{param}[{index}].type",
            )
        key = "refusal" if kind == "refusal" else "text"
        text = part.get(key)
        if not isinstance(text, str):
            raise InvalidRequest(f"A {kind} part needs a string '{key}'.", param=f"{param}[{index}].{key}")
        texts.append(text)
    return texts


def tool_call_part(
    call_names: dict[str, str], call_id: str, name: str, arguments: dict[str, Any]
) -> ToolCallPart:
    """A client's earlier tool call as a wire part; remembers its name for the result (§6)."""
    call_names[call_id] = name
    return {"type": "tool-call", "toolCallId": call_id, "toolName": name, "input": arguments}


def tool_result_part(call_names: Mapping[str, str], call_id: str, texts: list[str]) -> Part:
    """A client's tool result as a wire part: its text parts joined by a newline (§6)."""
    return {
        "type": "tool-result",
        "toolCallId": call_id,
        # §6: the name comes from the earlier call; the CLI says "unknown" when none matches.
        "toolName": call_names.get(call_id, "unknown"),
        "output": {"type": "text", "value": "\n".join(texts)},
    }


def _arguments(raw: Any, param: str) -> dict[str, Any]:
    if raw is None or raw == "":
        return {}  # some clients send "" for a call without arguments
    if not isinstance(raw, str):
        raise InvalidRequest("Tool call arguments must be a JSON string.", param=param)
    try:
        value = loads(raw)
    except JSONDecodeError:
        raise InvalidRequest("Tool call arguments are not valid JSON.", param=param) from None
    if not isinstance(value, dict):
        raise InvalidRequest("Tool call arguments must be a JSON object.", param=param)
    return value


class _Conversation:
    """OpenAI messages -> the upstream system string and wire messages (§6)."""

    def __init__(self, *, allow_remote_images: bool) -> None:
        self.allow_remote_images = allow_remote_images
        self.system: list[str] = []
        self.messages: list[WireMessage] = []
        self.call_names: dict[str, str] = {}

    def add(self, message: Any, param: str) -> None:
        if not isinstance(message, Mapping):
            raise InvalidRequest("Each message must be an object.", param=param)
        role = message.get("role")
        content = message.get("content")
        # `name` (participant name) is dropped: the upstream has no field for it (§6).
        if role in ("system", "developer"):
            # §14: every peer lifts system and developer text into params.system, in order.
            self.system.extend(text for text in text_parts(content, f"{param}.content") if text)
        elif role == "user":
            self.messages.append({"role": "user", "content": self._user_parts(content, f"{param}.content")})
        elif role == "assistant":
            self.messages.append({"role": "assistant", "content": self._assistant_parts(message, param)})
        elif role == "tool":
            self.messages.append({"role": "tool", "content": [self._tool_result(message, param)]})
        elif role == "function":
            raise InvalidRequest(
                "The 'function' role is deprecated; use 'tool' messages.", param=f"{param}.role"
            )
        else:
            raise InvalidRequest(
                f"Unknown message role {role!r}; expected system, developer, user, assistant or tool.",
                param=f"{param}.role",
            )

    def _user_parts(self, content: Any, param: str) -> list[Part]:
        if isinstance(content, str):
            return [{"type": "text", "text": content}] if content else []
        if not isinstance(content, list):
            raise InvalidRequest("User content must be a string or a list of content parts.", param=param)
        return [self._user_part(part, f"{param}[{index}]") for index, part in enumerate(content)]

    def _user_part(self, part: Any, param: str) -> Part:
        kind = part.get("type") if isinstance(part, Mapping) else None
        if kind == "text":
            text = part.get("text")
            if not isinstance(text, str):
                raise InvalidRequest("A text part needs a string 'text'.", param=f"{param}.text")
            return {"type": "text", "text": text}
        if kind == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, Mapping) else image  # `detail` has no upstream field
            if not isinstance(url, str):
                raise InvalidRequest(
                    "An image_url part needs a string 'url'.", param=f"{param}.image_url.url"
                )
            return media.image_from_url(
                url, param=f"{param}.image_url.url", allow_remote=self.allow_remote_images
            )
        if kind in ("input_audio", "file"):
            raise InvalidRequest(f"Content parts of type {kind!r} are not supported.", param=f"{param}.type")
        raise InvalidRequest(f"Unknown content part type {kind!r}.", param=f"{param}.type")

    def _assistant_parts(self, message: Mapping[str, Any], param: str) -> list[Part]:
        for key in ("audio", "function_call"):
            if message.get(key) is not None:
                raise InvalidRequest(f"Assistant '{key}' is not supported.", param=f"{param}.{key}")
        parts: list[Part] = []
        reasoning = message.get("reasoning_content")
        if isinstance(reasoning, str) and reasoning:
            parts.append({"type": "reasoning", "text": reasoning})  # §14: reasoning first (MAXE)
        content = message.get("content")
        texts = [] if content is None else text_parts(content, f"{param}.content", ("text", "refusal"))
        refusal = message.get("refusal")
        if isinstance(refusal, str):
            texts.append(refusal)  # what the model said; the upstream has no refusal part
        parts.extend({"type": "text", "text": text} for text in texts if text)
        calls = message.get("tool_calls")
        if calls is not None:
            if not isinstance(calls, list):
                raise InvalidRequest("'tool_calls' must be a list.", param=f"{param}.tool_calls")
            parts.extend(self._tool_call(call, f"{param}.tool_calls[{i}]") for i, call in enumerate(calls))
        return parts

    def _tool_call(self, call: Any, param: str) -> ToolCallPart:
        if not isinstance(call, Mapping) or call.get("type", "function") != "function":
            raise InvalidRequest("Only function tool calls are supported.", param=f"{param}.type")
        function = call.get("function")
        call_id = call.get("id")
        if not isinstance(call_id, str) or not call_id:
            raise InvalidRequest("A tool call needs a string 'id'.", param=f"{param}.id")
        if not isinstance(function, Mapping) or not isinstance(function.get("name"), str):
            raise InvalidRequest("A tool call needs 'function.name'.", param=f"{param}.function.name")
        arguments = _arguments(function.get("arguments"), f"{param}.function.arguments")
        return tool_call_part(self.call_names, call_id, function["name"], arguments)

    def _tool_result(self, message: Mapping[str, Any], param: str) -> Part:
        call_id = message.get("tool_call_id")
        if not isinstance(call_id, str) or not call_id:
            raise InvalidRequest(
                "A tool message needs a string 'tool_call_id'.", param=f"{param}.tool_call_id"
            )
        content = message.get("content")
        texts = [] if content is None else text_parts(content, f"{param}.content")
        return tool_result_part(self.call_names, call_id, texts)


def _messages(body: Mapping[str, Any], *, allow_remote_images: bool) -> _Conversation:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("'messages' must be a non-empty list.", param="messages")
    check_message_count(len(messages))
    conversation = _Conversation(allow_remote_images=allow_remote_images)
    for index, message in enumerate(messages):
        conversation.add(message, f"messages[{index}]")
    # §6, §14: the upstream rejects orphan results and unanswered calls; repair like the CLI.
    conversation.messages = repair_history(conversation.messages)
    if not conversation.messages and conversation.system:
        # OpenAI answers a conversation of instructions alone; the upstream needs a turn to
        # answer, so the instructions become it (the model reads the same text either way).
        text = "\n\n".join(conversation.system)
        conversation.messages = [{"role": "user", "content": [{"type": "text", "text": text}]}]
        conversation.system = []
    if not conversation.messages:
        raise InvalidRequest(
            "'messages' must include at least one message with content.",
            param="messages",
        )
    return conversation


def _tools(body: Mapping[str, Any]) -> list[ToolDefinition]:
    raw = _typed(body, "tools", list, "a list of tools") or []
    definitions: list[ToolDefinition] = []
    for index, tool in enumerate(raw):
        param = f"tools[{index}]"
        if not isinstance(tool, Mapping) or tool.get("type") != "function":
            raise InvalidRequest("Only tools of type 'function' are supported.", param=f"{param}.type")
        function = tool.get("function")
        if not isinstance(function, Mapping):
            raise InvalidRequest("A function tool needs a 'function' object.", param=f"{param}.function")
        # `strict` is dropped: the upstream's tools have no strict flag (§7).
        definitions.append(
            tools.tool_definition(
                function.get("name"),
                function.get("description"),
                function.get("parameters"),
                param=f"{param}.function",
            )
        )
    names = [definition["name"] for definition in definitions]
    if len(set(names)) != len(names):
        raise InvalidRequest("Tool names must be unique.", param="tools")
    return definitions


def _named(choice: Mapping[str, Any], names: set[str]) -> str:
    function = choice.get("function")
    name = function.get("name") if isinstance(function, Mapping) else None
    if not isinstance(name, str) or name not in names:
        raise InvalidRequest(f"tool_choice names a function not in 'tools': {name!r}.", param="tool_choice")
    return name


def _allowed(choice: Mapping[str, Any], names: set[str]) -> tuple[str, set[str]]:
    allowed = choice.get("allowed_tools")
    mode = allowed.get("mode") if isinstance(allowed, Mapping) else None
    listed = allowed.get("tools") if isinstance(allowed, Mapping) else None
    if mode not in ("auto", "required") or not isinstance(listed, list):
        raise InvalidRequest(
            "allowed_tools needs a mode (auto|required) and a tools list.", param="tool_choice"
        )
    subset = {_named(item if isinstance(item, Mapping) else {}, names) for item in listed}
    return ("any" if mode == "required" else "auto"), subset


def _tool_choice(
    body: Mapping[str, Any], definitions: list[ToolDefinition]
) -> tuple[list[ToolDefinition], dict[str, Any] | None]:
    """The tools to send and the upstream tool_choice (§5, §14)."""
    choice = body.get("tool_choice")
    names = {definition["name"] for definition in definitions}
    if choice is None or choice == "auto":
        return definitions, None
    if choice == "none":
        # §5: the upstream rejects {type:"none"}; RCCHN saw "send no tools" work live (§14).
        return [], None
    if choice == "required" and definitions:
        return definitions, tools.upstream_tool_choice("any")
    if isinstance(choice, Mapping) and choice.get("type") == "function":
        return definitions, tools.upstream_tool_choice("tool", _named(choice, names))
    if isinstance(choice, Mapping) and choice.get("type") == "allowed_tools":
        mode, subset = _allowed(choice, names)
        kept = [definition for definition in definitions if definition["name"] in subset]
        return kept, tools.upstream_tool_choice(mode)
    if choice == "required":
        raise InvalidRequest("tool_choice 'required' needs at least one tool.", param="tool_choice")
    raise InvalidRequest(
        "tool_choice must be 'auto', 'none', 'required', a function choice or allowed_tools.",
        param="tool_choice",
    )


def _reasoning_effort(body: Mapping[str, Any], model_info: ModelInfo | None) -> str | None:
    effort = body.get("reasoning_effort")
    if effort is None:
        return None
    if effort not in EFFORTS:
        raise InvalidRequest(
            f"'reasoning_effort' must be one of {', '.join(EFFORTS)}.", param="reasoning_effort"
        )
    if effort == "none":
        # The upstream cannot switch reasoning off; sending nothing leaves the model's default,
        # as the CLI does without --effort (HIPPOF maps none the same way, §14).
        return None
    level = "low" if effort == "minimal" else effort
    if model_info is None:
        return level  # unknown model: the upstream is the authority on its levels
    # §13: only models with an effort list get reasoning_effort, snapped to that list.
    return catalog.snap_effort(level, model_info.efforts)


def _response_format(body: Mapping[str, Any]) -> ResponseFormat | None:
    raw = body.get("response_format")
    if raw is None:
        return None
    kind = raw.get("type") if isinstance(raw, Mapping) else None
    if kind == "text":
        return None
    if kind == "json_object":
        return ResponseFormat("json_object")
    if kind != "json_schema":
        raise InvalidRequest(
            "response_format type must be 'text', 'json_object' or 'json_schema'.", param="response_format"
        )
    spec = raw.get("json_schema")
    name = spec.get("name") if isinstance(spec, Mapping) else None
    if not isinstance(name, str) or not _SCHEMA_NAME.match(name):
        raise InvalidRequest(
            "json_schema.name must be 1-64 letters, digits, '_' or '-'.",
            param="response_format.json_schema.name",
        )
    schema = spec.get("schema")
    if schema is not None and not isinstance(schema, Mapping):
        raise InvalidRequest(
            "json_schema.schema must be an object.", param="response_format.json_schema.schema"
        )
    description = spec.get("description")
    return ResponseFormat(
        "json_schema",
        name=name,
        schema=schema,
        strict=spec.get("strict") is True,
        description=description if isinstance(description, str) else None,
    )


def json_instruction(response_format: ResponseFormat) -> str:
    """The system-prompt instruction that asks the model for JSON (BRIDGE does the same, §14)."""
    rule = "Reply with only the JSON, no prose before or after it and no Markdown code fences."
    if response_format.type == "json_object":
        return f"Respond with a single valid JSON object. {rule}"
    lines = [f"Respond with a single JSON value conforming to the JSON Schema {response_format.name!r}."]
    if response_format.description:
        lines.append(f"Purpose: {response_format.description}")
    if response_format.schema is not None:
        lines.append(f"Schema:\n{dumps_str(response_format.schema)}")
    lines.append(rule)
    return "\n".join(lines)


def _model(body: Mapping[str, Any]) -> tuple[str, ModelInfo | None]:
    name = body.get("model")
    if not isinstance(name, str) or not name.strip():
        raise InvalidRequest("'model' must be a non-empty string.", param="model")
    return name, catalog.resolve(name)


def _stream_flags(body: Mapping[str, Any]) -> tuple[bool, bool]:
    stream = bool(_typed(body, "stream", bool, "a boolean"))
    options = _typed(body, "stream_options", Mapping, "an object") or {}
    include_usage = options.get("include_usage")
    if include_usage is not None and not isinstance(include_usage, bool):
        raise InvalidRequest("'include_usage' must be a boolean.", param="stream_options.include_usage")
    # include_obfuscation is dropped: chunks carry no obfuscation padding.
    return stream, stream and bool(include_usage)


def parse_chat_request(
    body: Mapping[str, Any], headers: Mapping[str, str], *, allow_remote_images: bool = False
) -> ChatRequest:
    """A ``POST /v1/chat/completions`` body -> ChatRequest; raises InvalidRequest (a 400)."""
    if not isinstance(body, Mapping):
        raise InvalidRequest("The request body must be a JSON object.")
    client_model, model_info = _model(body)
    _refuse_unsupported(body)
    stream, include_usage = _stream_flags(body)
    temperature = _number(body, "temperature", 0, 2)
    # Validated, then dropped (DROPPED_FIELDS): a malformed value is still the client's bug.
    _number(body, "top_p", 0, 1)
    _number(body, "frequency_penalty", -2, 2)
    _number(body, "presence_penalty", -2, 2)
    parallel_tool_calls = _typed(body, "parallel_tool_calls", bool, "a boolean")
    conversation = _messages(body, allow_remote_images=allow_remote_images)
    media.check_vision(model_info, conversation.messages, client_model=client_model)
    definitions, tool_choice = _tool_choice(body, _tools(body))
    response_format = _response_format(body)
    system = list(conversation.system)
    if response_format is not None:
        system.append(json_instruction(response_format))
    upstream = UpstreamRequest(
        model=model_info.id if model_info else client_model,
        messages=conversation.messages,
        system="\n\n".join(system),
        tools=definitions,
        max_tokens=_max_tokens(body),
        temperature=temperature,
        reasoning_effort=_reasoning_effort(body, model_info),
        tool_choice=tool_choice,
        stop_sequences=_stop_sequences(body),
        session_hint=session.session_hint(headers, body.get("prompt_cache_key"), body.get("user")),
        client_model=client_model,
        stream=stream,
    )
    return ChatRequest(
        upstream, stream, include_usage, response_format, model_info, parallel_tool_calls is not False
    )
