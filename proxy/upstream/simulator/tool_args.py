"""Tool-call arguments that validate against the tool's declared JSON Schema.

Real agents check a call's arguments against the schema they declared (opencode rejects a
``bash`` call without ``command``), so the simulator's tool scenarios build the smallest
instance that satisfies it: every required property, of the declared type, within enums,
bounds and lengths. Deterministic: the same schema always gives the same arguments.

Covered: ``type`` (also as a list), ``const``, ``enum``, ``default``, ``anyOf``/``oneOf``
(first usable option), ``allOf`` (merged), local ``$ref`` (``#/$defs/...``,
``#/definitions/...``), object ``required``/``properties``, array ``minItems``/``items``,
string ``minLength``/``maxLength``/``format``, and numeric bounds and ``multipleOf``. A
``pattern`` cannot be satisfied in general; such strings get a plain word.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

MAX_DEPTH = 12
# Friendly values for common property names, so a demo's tool call does something sensible.
NAMED_STRINGS = {
    "command": "echo hello from the ccsite simulator",
    "cmd": "echo hello from the ccsite simulator",
    "description": "Simulated call",
    "pattern": "TODO",
    "query": "ccsite",
    "url": "https://example.com/",
}
FORMATS = {
    "uri": "https://example.com/",
    "url": "https://example.com/",
    "email": "sim@example.com",
    "date-time": "2026-01-01T00:00:00Z",
    "date": "2026-01-01",
    "time": "00:00:00Z",
    "uuid": "00000000-0000-4000-8000-000000000000",
    "ipv4": "127.0.0.1",
    "hostname": "example.com",
}


def arguments_for(schema: Any, *, paths: str) -> dict[str, Any]:
    """An object that validates against ``schema`` (a tool's input schema). ``paths`` is the
    value for path-like properties (a file inside the client's working directory)."""
    value = _Builder(schema if isinstance(schema, Mapping) else {}, paths).value(schema, "", 0)
    return value if isinstance(value, dict) else {}


class _Builder:
    def __init__(self, root: Mapping[str, Any], paths: str) -> None:
        self._root = root
        self._paths = paths

    def value(self, schema: Any, name: str, depth: int) -> Any:
        if not isinstance(schema, Mapping) or depth > MAX_DEPTH:
            return None if depth > MAX_DEPTH else "value"
        schema = self._resolved(schema, depth)
        if "const" in schema:
            return schema["const"]
        if isinstance(schema.get("enum"), list) and schema["enum"]:
            return schema["enum"][0]
        if "default" in schema:
            return schema["default"]
        for key in ("anyOf", "oneOf"):
            options = schema.get(key)
            if isinstance(options, list) and options:
                usable = [o for o in options if not (isinstance(o, Mapping) and o.get("type") == "null")]
                return self.value((usable or options)[0], name, depth + 1)
        kind = _kind(schema)
        if kind == "object":
            return self._object(schema, depth)
        if kind == "array":
            count = max(0, int(schema.get("minItems", 0)))
            return [self.value(schema.get("items", {}), name, depth + 1) for _ in range(count)]
        if kind in ("integer", "number"):
            return _number(schema, integer=kind == "integer")
        if kind == "boolean":
            return True
        if kind == "null":
            return None
        return self._string(schema, name)

    def _resolved(self, schema: Mapping[str, Any], depth: int) -> Mapping[str, Any]:
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/"):
            target: Any = self._root
            for step in ref[2:].split("/"):
                target = target.get(step) if isinstance(target, Mapping) else None
            if isinstance(target, Mapping):
                return self._resolved(target, depth + 1) if depth < MAX_DEPTH else target
        parts = schema.get("allOf")
        if isinstance(parts, list) and parts:
            merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
            for raw in parts:
                if isinstance(raw, Mapping):
                    part = self._resolved(raw, depth + 1)
                    merged.setdefault("properties", {}).update(part.get("properties", {}))
                    merged["required"] = [*merged.get("required", []), *part.get("required", [])]
                    for key, item in part.items():
                        if key not in ("properties", "required"):
                            merged.setdefault(key, item)
            return merged
        return schema

    def _object(self, schema: Mapping[str, Any], depth: int) -> dict[str, Any]:
        properties = schema.get("properties")
        properties = properties if isinstance(properties, Mapping) else {}
        required = [key for key in schema.get("required", []) if isinstance(key, str)]
        # Optional string properties that say what to act on (a path, a command) are filled too,
        # so a call to a loosely declared read_file still names a file.
        acted_on = [
            key
            for key, child in properties.items()
            if key not in required
            and _acts_on(key)
            and isinstance(child, Mapping)
            and _kind(child) == "string"
        ]
        return {key: self.value(properties.get(key, {}), key, depth + 1) for key in [*required, *acted_on]}

    def _string(self, schema: Mapping[str, Any], name: str) -> str:
        lowered = name.lower()
        text = FORMATS.get(str(schema.get("format")), "")
        if not text and ("path" in lowered or lowered in ("file", "filename")):
            text = self._paths
        text = text or NAMED_STRINGS.get(lowered, "value")
        low, high = schema.get("minLength"), schema.get("maxLength")
        if isinstance(low, int) and len(text) < low:
            text = text + "x" * (low - len(text))
        if isinstance(high, int) and len(text) > high:
            text = text[: max(high, 0)]
        return text


def _acts_on(name: str) -> bool:
    lowered = name.lower()
    return "path" in lowered or lowered in ("file", "filename", "command", "cmd")


def _kind(schema: Mapping[str, Any]) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if isinstance(kind, str):
        return kind
    if "properties" in schema or "required" in schema:
        return "object"
    if "items" in schema:
        return "array"
    return "string"


def _number(schema: Mapping[str, Any], *, integer: bool) -> int | float:
    low = schema.get("minimum")
    exclusive_low = schema.get("exclusiveMinimum")
    high = schema.get("maximum")
    exclusive_high = schema.get("exclusiveMaximum")
    value: float = 1
    if isinstance(low, int | float):
        value = low
    if isinstance(exclusive_low, int | float) and not isinstance(exclusive_low, bool):
        value = max(value, exclusive_low + (1 if integer else 0.5))
    step = schema.get("multipleOf")
    if isinstance(step, int | float) and step > 0:
        value = math.ceil(value / step) * step
    if isinstance(high, int | float) and value > high:
        value = high
    if (
        isinstance(exclusive_high, int | float)
        and not isinstance(exclusive_high, bool)
        and value >= exclusive_high
    ):
        value = exclusive_high - (1 if integer else 0.5)
    return int(math.ceil(value)) if integer else value
