"""Reading a client's JSON body: size limit, JSON, object shape; errors are InvalidRequest."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest

from proxy.translate.errors import InvalidRequest
from proxy.translate.jsonfast import JSONDecodeError, loads


def parse_json_body(request: HttpRequest) -> dict[str, Any]:
    try:
        raw = request.body
    except RequestDataTooBig:
        raise InvalidRequest(
            "Request body is larger than this gateway accepts (CCSITE_MAX_BODY_BYTES).",
            code="request_too_large",
            status=413,
        ) from None
    if not raw.strip():
        raise InvalidRequest("Request body is empty; send a JSON object.", code="invalid_json")
    try:
        body = loads(raw)
    except JSONDecodeError as exc:
        raise InvalidRequest(f"Request body is not valid JSON: {exc}", code="invalid_json") from None
    if not isinstance(body, dict):
        raise InvalidRequest("Request body must be a JSON object.", code="invalid_json")
    return body
