"""Simulator request validation: what the real service rejects (protocol §2, §3, §5, §6, §7).

Everything the 1.64.0 CLI sends must pass, as must the variants peers send successfully
(string content, ``""`` memory, ``type:"function"`` on tools). Messages imitate zod's
(``Too big: expected number to be <=200000``, §5).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import orjson

from proxy.upstream.simulator.errors import RequestRejected

MAX_TOKENS_CAP = 200_000  # protocol §5: the server-side cap
BEARER = re.compile(r"Bearer (user_\S+)")
# zod's uuid(): RFC 9562 version and variant bits, plus the nil and max UUIDs (§5 threadId).
UUID = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[1-8][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
    r"|00000000-0000-0000-0000-000000000000|ffffffff-ffff-ffff-ffff-ffffffffffff",
    re.IGNORECASE,
)
PERMISSION_MODES = ("standard", "auto-accept", "plan")
MODES = (
    "agent",
    "learning",
    "custom-agent",
    "custom-agent-create",
    "title-gen",
    "tool-desc",
    "compact",
    "vision",
)
EFFORTS = ("low", "medium", "high", "xhigh", "max")
TOOL_CHOICES = ("auto", "any", "tool")  # §5: {type:"none"} is rejected
ROLE_PARTS = {
    "user": ("text", "image", "file"),
    "assistant": ("text", "reasoning", "tool-call", "tool-result", "file"),
    "tool": ("tool-result",),
}
CONFIG_STRINGS = ("workingDir", "date", "environment", "currentBranch", "mainBranch", "gitStatus")
CONFIG_STRING_LISTS = ("structure", "recentCommits", "additionalDirectories")


def header(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> str | None:
    for key, value in headers:
        if key == name:
            return value.decode("latin-1")
    return None


def bearer_key(headers: Iterable[tuple[bytes, bytes]]) -> str:
    """The ``user_...`` key of ``Authorization: Bearer`` (protocol §2), else 401."""
    match = BEARER.fullmatch((header(headers, b"authorization") or "").strip())
    if match is None:
        raise RequestRejected(401, "Missing or invalid API key.")
    return match.group(1)


def check_json_content_type(headers: Iterable[tuple[bytes, bytes]]) -> None:
    # protocol §3: the CLI sends "application/json, application/json"; containment suffices.
    value = header(headers, b"content-type") or ""
    if "application/json" not in value.lower():
        raise RequestRejected(400, f"Invalid HTTP header: Content-Type={value}")


def parse_json_body(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise RequestRejected(400, "Malformed JSON in request body") from None


def _received(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _reject(path: str, message: str) -> RequestRejected:
    return RequestRejected(400, f"{path}: {message}")


def _expect(value: Any, expected: str, path: str) -> None:
    if _received(value) != expected:
        raise _reject(path, f"Invalid input: expected {expected}, received {_received(value)}")


def _require(container: Mapping[str, Any], key: str, expected: str, path: str) -> Any:
    if key not in container:
        raise _reject(f"{path}.{key}", f"Invalid input: expected {expected}, received undefined")
    _expect(container[key], expected, f"{path}.{key}")
    return container[key]


def _optional(container: Mapping[str, Any], key: str, expected: str, path: str) -> None:
    if key in container and container[key] is not None:
        _expect(container[key], expected, f"{path}.{key}")


def _one_of(container: Mapping[str, Any], key: str, options: tuple[str, ...], path: str) -> None:
    if key in container and container[key] not in options:
        choices = "|".join(f'"{option}"' for option in options)
        raise _reject(f"{path}.{key}", f"Invalid option: expected one of {choices}")


def _validate_config(config: Mapping[str, Any]) -> None:
    for key in CONFIG_STRINGS:
        _optional(config, key, "string", "config")
    for key in CONFIG_STRING_LISTS:
        _optional(config, key, "array", "config")
        for index, item in enumerate(config.get(key) or []):
            _expect(item, "string", f"config.{key}.{index}")
    _optional(config, "isGitRepo", "boolean", "config")


def _validate_top_level(envelope: Mapping[str, Any]) -> None:
    _validate_config(_require(envelope, "config", "object", "body"))
    for key in ("memory", "taste", "skills"):
        # 1.x sends null, 0.32.x sent "" (protocol §5).
        _optional(envelope, key, "string", "body")
    _one_of(envelope, "permissionMode", PERMISSION_MODES, "body")
    _one_of(envelope, "mode", MODES, "body")
    _optional(envelope, "promptCache", "string", "body")
    if "threadId" in envelope:
        _expect(envelope["threadId"], "string", "body.threadId")
        if not UUID.fullmatch(envelope["threadId"]):
            raise _reject("body.threadId", "Invalid UUID")


def _validate_part(part: Any, role: str, path: str, seen_calls: set[str]) -> None:
    _expect(part, "object", path)
    kind = _require(part, "type", "string", path)
    if kind not in ROLE_PARTS[role]:
        raise _reject(f"{path}.type", f"Invalid input: part {kind!r} is not allowed in a {role} message")
    if kind in ("text", "reasoning"):
        _require(part, "text", "string", path)
    elif kind == "image":
        _require(part, "image", "string", path)
    elif kind == "tool-call":
        seen_calls.add(_require(part, "toolCallId", "string", path))
        _require(part, "toolName", "string", path)
    elif kind == "tool-result":
        call_id = _require(part, "toolCallId", "string", path)
        _require(part, "toolName", "string", path)
        _require(part, "output", "object", path)
        # protocol §14: the upstream rejects tool results whose call it never saw.
        if call_id not in seen_calls:
            raise _reject(f"{path}.toolCallId", f"Tool result for unknown tool call {call_id!r}")


def _validate_messages(messages: list[Any]) -> None:
    if not messages:
        raise _reject("params.messages", "Too small: expected array to have >=1 items")
    seen_calls: set[str] = set()
    for index, message in enumerate(messages):
        path = f"params.messages.{index}"
        _expect(message, "object", path)
        _one_of(message, "role", tuple(ROLE_PARTS), path)
        role = _require(message, "role", "string", path)
        content = message.get("content")
        if isinstance(content, str) and role != "tool":
            continue  # plain-string content (0.32.x and peers, protocol §6)
        _require(message, "content", "array", path)
        for part_index, part in enumerate(content):
            _validate_part(part, role, f"{path}.content.{part_index}", seen_calls)


def _validate_tools(tools: list[Any]) -> None:
    for index, tool in enumerate(tools):
        path = f"params.tools.{index}"
        _expect(tool, "object", path)
        _require(tool, "name", "string", path)
        _optional(tool, "description", "string", path)
        _require(tool, "input_schema", "object", path)


def _validate_system(system: Any) -> None:
    if isinstance(system, str):
        return
    _expect(system, "array", "params.system")
    for index, block in enumerate(system):
        path = f"params.system.{index}"
        _expect(block, "object", path)
        _one_of(block, "type", ("text",), path)
        _require(block, "text", "string", path)


def _validate_max_tokens(value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise _reject("params.max_tokens", f"Invalid input: expected int, received {_received(value)}")
    if value > MAX_TOKENS_CAP:
        raise _reject("params.max_tokens", f"Too big: expected number to be <={MAX_TOKENS_CAP}")
    if value < 1:
        raise _reject("params.max_tokens", "Too small: expected number to be >=1")


def _validate_tool_choice(choice: Any) -> None:
    _expect(choice, "object", "params.tool_choice")
    _one_of(choice, "type", TOOL_CHOICES, "params.tool_choice")
    if choice.get("type") == "tool":
        _require(choice, "name", "string", "params.tool_choice")


def _validate_params(params: Mapping[str, Any]) -> None:
    model = _require(params, "model", "string", "params")
    if not model:
        raise _reject("params.model", "Too small: expected string to have >=1 characters")
    _validate_messages(_require(params, "messages", "array", "params"))
    _optional(params, "tools", "array", "params")
    _validate_tools(params.get("tools") or [])
    if "system" in params:
        _validate_system(params["system"])
    if "max_tokens" in params:
        _validate_max_tokens(params["max_tokens"])
    _optional(params, "stream", "boolean", "params")
    _optional(params, "temperature", "number", "params")
    _one_of(params, "reasoning_effort", EFFORTS, "params")
    if "tool_choice" in params:
        _validate_tool_choice(params["tool_choice"])


def validate_envelope(envelope: Any, *, is_known_model: Callable[[str], bool]) -> None:
    """Raise RequestRejected for an envelope the service would refuse (§5, §9.2)."""
    _expect(envelope, "object", "body")
    _validate_top_level(envelope)
    params = _require(envelope, "params", "object", "body")
    _validate_params(params)
    if not is_known_model(params["model"]):
        raise RequestRejected(403, "Model/provider not recognized", code="FORBIDDEN")
