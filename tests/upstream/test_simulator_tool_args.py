"""The simulator's tool calls carry arguments that validate against the declared schema,
checked with the jsonschema library (Draft 2020-12), directly and through a live gateway."""

from __future__ import annotations

import json
from typing import Any

import httpx
import jsonschema
import pytest

from proxy.upstream.simulator.tool_args import arguments_for

# Tool schemas as real agents declare them (shapes from opencode, Claude Code and common SDK demos).
SCHEMAS: dict[str, dict[str, Any]] = {
    "bash": {
        "type": "object",
        "properties": {
            "command": {"type": "string", "description": "The command to execute"},
            "timeout": {"type": "number", "description": "Optional timeout in ms"},
            "description": {"type": "string"},
        },
        "required": ["command", "description"],
        "additionalProperties": False,
        "$schema": "http://json-schema.org/draft-07/schema#",
    },
    "edit": {
        "type": "object",
        "properties": {
            "filePath": {"type": "string"},
            "oldString": {"type": "string"},
            "newString": {"type": "string"},
            "replaceAll": {"type": "boolean"},
        },
        "required": ["filePath", "oldString", "newString"],
        "additionalProperties": False,
    },
    "weather": {
        "type": "object",
        "properties": {
            "city": {"type": "string", "minLength": 12, "maxLength": 20},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            "days": {"type": "integer", "minimum": 3, "maximum": 7},
            "ratio": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
            "step": {"type": "integer", "minimum": 5, "multipleOf": 4},
        },
        "required": ["city", "unit", "days", "ratio", "step"],
    },
    "nested": {
        "type": "object",
        "$defs": {"point": {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]}},
        "properties": {
            "points": {"type": "array", "items": {"$ref": "#/$defs/point"}, "minItems": 2},
            "mode": {"anyOf": [{"type": "null"}, {"const": "fast"}]},
            "tags": {"type": ["array", "null"], "items": {"type": "string"}},
            "meta": {
                "allOf": [
                    {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
                    {"properties": {"b": {"type": "boolean"}}, "required": ["b"]},
                ]
            },
            "when": {"type": "string", "format": "date-time"},
            "level": {"type": "integer", "default": 3},
        },
        "required": ["points", "mode", "tags", "meta", "when", "level"],
    },
    "todos": {
        "type": "object",
        "properties": {
            "todos": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "properties": {
                        "content": {"type": "string", "minLength": 1},
                        "status": {"type": "string", "enum": ["pending", "in_progress", "completed"]},
                        "priority": {"type": "string", "enum": ["high", "medium", "low"]},
                    },
                    "required": ["content", "status", "priority"],
                },
            }
        },
        "required": ["todos"],
    },
}


def _validate(schema: dict[str, Any], value: Any) -> None:
    validator = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    validator(schema, format_checker=validator.FORMAT_CHECKER).validate(value)


@pytest.mark.parametrize("name", SCHEMAS)
def test_generated_arguments_validate_against_the_schema(name):
    arguments = arguments_for(SCHEMAS[name], paths="/home/dev/app/README.md")
    _validate(SCHEMAS[name], arguments)
    assert set(SCHEMAS[name]["required"]) <= set(arguments)


def test_path_like_and_command_properties_get_useful_values():
    assert arguments_for(SCHEMAS["edit"], paths="/w/README.md")["filePath"] == "/w/README.md"
    assert arguments_for(SCHEMAS["bash"], paths="/w/x")["command"].startswith("echo ")


@pytest.mark.live
@pytest.mark.parametrize("name", ["bash", "todos", "weather"])
def test_tool_calls_through_the_gateway_validate_against_the_declared_schema(live, name):
    tool = {"type": "function", "function": {"name": name, "parameters": SCHEMAS[name]}}
    response = httpx.post(
        f"{live.url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {live.key}"},
        json={
            "model": "deepseek/deepseek-v4-flash",
            "messages": [{"role": "user", "content": f"[sim:tool-call tool={name}]"}],
            "tools": [tool],
        },
        timeout=30,
    )
    (call,) = response.json()["choices"][0]["message"]["tool_calls"]
    assert call["function"]["name"] == name
    _validate(SCHEMAS[name], json.loads(call["function"]["arguments"]))
