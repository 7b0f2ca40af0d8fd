"""Reading a client's JSON body: size limit, JSON, object shape; errors are InvalidRequest."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest

from ccsite.settings_cache import cached_settings
from proxy.translate.errors import InvalidRequest
from proxy.translate.jsonfast import JSONDecodeError, loads

T = TypeVar("T")


def _raw_body(request: HttpRequest) -> bytes:
    try:
        return request.body
    except RequestDataTooBig:
        raise InvalidRequest(
            "Request body is larger than this gateway accepts (CCSITE_MAX_BODY_BYTES).",
            code="request_too_large",
            status=413,
        ) from None


def parse_json_body(request: HttpRequest) -> dict[str, Any]:
    return _loads_object(_raw_body(request))


def _loads_object(raw: bytes) -> dict[str, Any]:
    if not raw.strip():
        raise InvalidRequest("Request body is empty; send a JSON object.", code="invalid_json")
    try:
        body = loads(raw)
    except JSONDecodeError as exc:
        raise InvalidRequest(f"Request body is not valid JSON: {exc}", code="invalid_json") from None
    if not isinstance(body, dict):
        raise InvalidRequest("Request body must be a JSON object.", code="invalid_json")
    return body


async def parse_and_translate(
    request: HttpRequest,
    translate: Callable[[dict[str, Any]], T],
    on_refusal: Callable[[dict[str, Any], InvalidRequest], None],
) -> T:
    """``translate(body)`` of the JSON body; raises InvalidRequest, after ``on_refusal(body,
    exc)`` (``body`` is ``{}`` when it was not a JSON object), so every refusal is recorded.

    Parsing and translating are linear in the body, but a legal body can be tens of
    megabytes: above CCSITE_OFFLOAD_BODY_BYTES the work runs in a worker thread, where the
    interpreter's switch interval (5 ms) keeps handing the event loop its turns, so other
    clients' streams are not held up while it runs.
    """
    try:
        raw = _raw_body(request)
        if len(raw) <= cached_settings.CCSITE_OFFLOAD_BODY_BYTES:
            body, result = _parse_and_translate(raw, translate)
        else:
            body, result = await asyncio.to_thread(_parse_and_translate, raw, translate)
    except InvalidRequest as exc:  # too large, not JSON, not an object: recorded all the same
        on_refusal({}, exc)
        raise
    if isinstance(result, InvalidRequest):
        on_refusal(body, result)  # on the loop: recorders are not thread-safe
        raise result
    return result


def _parse_and_translate(
    raw: bytes, translate: Callable[[dict[str, Any]], T]
) -> tuple[dict[str, Any], T | InvalidRequest]:
    try:
        body = _loads_object(raw)
    except InvalidRequest as exc:  # not JSON, or not an object: still one logged refusal
        return {}, exc
    try:
        return body, translate(body)
    except InvalidRequest as exc:
        return body, exc
