"""Tool definitions and tool choice, shared by every surface (protocol §5, §7, §14)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from proxy.translate.errors import InvalidRequest
from proxy.translate.wire import ToolDefinition

_TOOL_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
_SCHEMA_TYPES = {"object", "array", "string", "number", "integer", "boolean", "null"}


def _check_schema_node(node: Any, param: str) -> None:
    if not isinstance(node, Mapping):
        raise InvalidRequest("A JSON Schema must be an object.", param=param)
    kind = node.get("type")
    kinds = kind if isinstance(kind, list) else [kind] if kind is not None else []
    if any(not isinstance(item, str) or item not in _SCHEMA_TYPES for item in kinds):
        raise InvalidRequest(f"Unknown JSON Schema type {kind!r}.", param=f"{param}.type")
    properties = node.get("properties")
    if properties is not None:
        if not isinstance(properties, Mapping):
            raise InvalidRequest("'properties' must be an object.", param=f"{param}.properties")
        for name, child in properties.items():
            _check_schema_node(child, f"{param}.properties.{name}")
    required = node.get("required")
    if required is not None and (
        not isinstance(required, list) or not all(isinstance(item, str) for item in required)
    ):
        raise InvalidRequest("'required' must be a list of property names.", param=f"{param}.required")


def tool_definition(name: Any, description: Any, schema: Any, *, param: str) -> ToolDefinition:
    """A client's tool as the upstream takes it: ``{name, description, input_schema}`` (§7)."""
    if not isinstance(name, str) or not _TOOL_NAME.match(name):
        raise InvalidRequest(
            "Tool names must be 1-128 characters of letters, digits, '_', '-', '.' or ':'.",
            param=f"{param}.name",
        )
    if description is not None and not isinstance(description, str):
        raise InvalidRequest("A tool description must be a string.", param=f"{param}.description")
    if schema is None:
        schema = {"type": "object", "properties": {}}
    _check_schema_node(schema, f"{param}.schema")
    if schema.get("type", "object") != "object":
        raise InvalidRequest("A tool's input schema must describe an object.", param=f"{param}.schema")
    return {"name": name, "description": description or "", "input_schema": dict(schema)}


def upstream_tool_choice(mode: str, name: str | None = None) -> dict[str, Any] | None:
    """§5/§14: the upstream validates ``{type: auto|any|tool, name?}`` and rejects ``none``.

    ``auto`` is the default behaviour, so nothing is sent (the CLI never sends tool_choice);
    ``none`` is handled by the caller by sending no tools at all (RCCHN's live observation).
    """
    if mode == "any":
        return {"type": "any"}
    if mode == "tool" and name:
        return {"type": "tool", "name": name}
    return None
