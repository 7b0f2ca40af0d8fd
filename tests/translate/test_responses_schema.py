"""Every Responses event and object the encoder emits against the OpenAI API description.

The schemas are an in-repo extract (tests/fixtures/openai-responses-schemas.json, MIT, made by
tests/fixtures/extract_responses_schemas.py); this small validator covers the OpenAPI 3.1
subset they use.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import pytest

from tests.golden import FIXTURES, parse_sse
from tests.translate.test_responses_out import STREAMS, body_of, stream_bytes, upstream_events

_TYPES: dict[str, Any] = {
    "object": dict,
    "array": list,
    "string": str,
    "integer": int,
    "number": (int, float),
    "boolean": bool,
    "null": type(None),
}
EVENT_SCHEMAS = {
    "response.created": "ResponseCreatedEvent",
    "response.in_progress": "ResponseInProgressEvent",
    "response.completed": "ResponseCompletedEvent",
    "response.incomplete": "ResponseIncompleteEvent",
    "response.failed": "ResponseFailedEvent",
    "response.output_item.added": "ResponseOutputItemAddedEvent",
    "response.output_item.done": "ResponseOutputItemDoneEvent",
    "response.content_part.added": "ResponseContentPartAddedEvent",
    "response.content_part.done": "ResponseContentPartDoneEvent",
    "response.output_text.delta": "ResponseTextDeltaEvent",
    "response.output_text.done": "ResponseTextDoneEvent",
    "response.reasoning_summary_part.added": "ResponseReasoningSummaryPartAddedEvent",
    "response.reasoning_summary_part.done": "ResponseReasoningSummaryPartDoneEvent",
    "response.reasoning_summary_text.delta": "ResponseReasoningSummaryTextDeltaEvent",
    "response.reasoning_summary_text.done": "ResponseReasoningSummaryTextDoneEvent",
    "response.reasoning_text.delta": "ResponseReasoningTextDeltaEvent",
    "response.reasoning_text.done": "ResponseReasoningTextDoneEvent",
    "response.function_call_arguments.delta": "ResponseFunctionCallArgumentsDeltaEvent",
    "response.function_call_arguments.done": "ResponseFunctionCallArgumentsDoneEvent",
}


@cache
def schemas() -> dict[str, Any]:
    return json.loads((FIXTURES / "openai-responses-schemas.json").read_text())["schemas"]


def _type_errors(value: Any, kind: Any, path: str) -> list[str]:
    kinds = kind if isinstance(kind, list) else [kind]
    for name in kinds:
        if isinstance(value, bool) and name != "boolean":
            continue
        if isinstance(value, _TYPES[name]):
            return []
    return [f"{path}: expected {kind}, got {value!r}"]


def schema_errors(value: Any, schema: dict[str, Any], path: str = "$") -> list[str]:
    if "$ref" in schema:
        return schema_errors(value, schemas()[schema["$ref"].rsplit("/", 1)[-1]], path)
    errors = [error for part in schema.get("allOf", []) for error in schema_errors(value, part, path)]
    for key in ("anyOf", "oneOf"):
        if key in schema and all(schema_errors(value, option, path) for option in schema[key]):
            errors.append(f"{path}: matches no {key} option")
    if "type" in schema and (type_errors := _type_errors(value, schema["type"], path)):
        return errors + type_errors
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: {value!r} not in {schema['enum']}")
    if isinstance(value, dict):
        errors += [f"{path}: missing {key}" for key in schema.get("required", []) if key not in value]
        for key, child in schema.get("properties", {}).items():
            if key in value:
                errors += schema_errors(value[key], child, f"{path}.{key}")
    if isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            errors += schema_errors(item, schema["items"], f"{path}[{index}]")
    return errors


def test_the_validator_catches_a_missing_required_key_and_a_wrong_enum():
    body = body_of(upstream_events("01-text-only"))
    del body["output"][0]["status"]
    body["status"] = "thinking"
    errors = schema_errors(body, {"$ref": "#/components/schemas/Response"})
    assert "$.status: 'thinking' not in" in " ".join(errors)
    assert any("matches no" in error for error in errors), "the message item no longer matches"


def test_the_extract_keeps_the_sources_licence():
    document = json.loads((FIXTURES / "openai-responses-schemas.json").read_text())
    assert document["license"]["name"] == "MIT" and "OpenAI" in document["_notice"]


@pytest.mark.parametrize("name", STREAMS)
def test_objects_match_the_response_schema(name):
    for summary in ({"summary": "auto"}, {}):
        body = body_of(upstream_events(name), reasoning=summary, include=["reasoning.encrypted_content"])
        assert schema_errors(body, {"$ref": "#/components/schemas/Response"}) == []


@pytest.mark.parametrize("name", [*STREAMS, "04-error-midstream"])
def test_every_event_matches_its_schema(name):
    for summary in ({"summary": "auto"}, {}):
        raw = stream_bytes(
            upstream_events(name), reasoning=summary, tools=[{"type": "function", "name": "f"}]
        )
        for _, data in parse_sse(raw):
            event = json.loads(data)
            schema = {"$ref": f"#/components/schemas/{EVENT_SCHEMAS[event['type']]}"}
            assert schema_errors(event, schema) == [], event["type"]
