"""Simulator error responses: the non-2xx JSON envelope of protocol §9.1 and the §9.2 cases."""

from __future__ import annotations

import http
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from proxy.upstream.simulator.scenarios import SimParams

DOCS_BASE = "https://commandcode.ai/docs/reference/errors/"
JSON_CONTENT_TYPE = b"application/json"

# Codes for the statuses of protocol §9.2; the ones the doc does not name are plain HTTP names.
STATUS_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    402: "MODEL_NOT_IN_PLAN",
    403: "MODEL_NOT_IN_PLAN",
    404: "NOT_FOUND",
    408: "REQUEST_TIMEOUT",
    413: "PAYLOAD_TOO_LARGE",
    422: "CMD_ZDR_NO_PROVIDERS",
    429: "RATE_LIMITED",
    500: "INTERNAL_SERVER_ERROR",
    502: "BAD_GATEWAY",
    503: "SERVICE_UNAVAILABLE",
    504: "GATEWAY_TIMEOUT",
    529: "OVERLOADED",
}

# protocol §9.2 / example 06: a usage window, its length, and how the message names it.
WINDOW_SECONDS = {"fiveHour": 5 * 3600, "weekly": 7 * 86400, "daily": 86400}
WINDOW_LABELS = {"fiveHour": "5-hour", "weekly": "weekly", "daily": "daily"}


@dataclass(frozen=True, slots=True)
class SimResponse:
    """A complete, non-streaming response."""

    status: int
    body: bytes
    headers: tuple[tuple[bytes, bytes], ...] = ()


def json_response(status: int, payload: Any, headers: tuple[tuple[bytes, bytes], ...] = ()) -> SimResponse:
    return SimResponse(status, orjson.dumps(payload), headers)


class RequestRejected(Exception):
    """The simulator answers this request with a §9.1 error envelope."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        extra: dict[str, Any] | None = None,
        headers: tuple[tuple[bytes, bytes], ...] = (),
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code or STATUS_CODES.get(status, "ERROR")
        self.message = message
        self.extra = extra or {}
        self.headers = headers

    def response(self) -> SimResponse:
        error = {
            "code": self.code,
            "status": self.status,
            "message": self.message,
            "docs": DOCS_BASE + self.code.lower(),
            **self.extra,
        }
        return json_response(self.status, {"success": False, "error": error}, self.headers)


def _status_phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Overloaded" if status == 529 else "Error"


def _iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def usage_window_error(window: str, *, now: float | None = None) -> RequestRejected:
    """Example 06: a plan window is used up; the CLI does not retry it (exit 5)."""
    seconds = WINDOW_SECONDS[window]
    reset = int(now if now is not None else time.time()) + seconds
    message = f"You've reached the {WINDOW_LABELS[window]} usage limit for your plan. Resets at {_iso(reset)}"
    return RequestRejected(
        429,
        message,
        code="RATE_LIMITED",
        extra={"rateLimit": {"window": window, "reset": reset}},
        headers=((b"retry-after", str(seconds).encode()),),
    )


def scenario_error(params: SimParams, *, model: str) -> RequestRejected:
    """The HTTP failure an ``http-NNN`` scenario answers with (protocol §9.2)."""
    status = params.status or 500
    if status == 401:
        return RequestRejected(401, "Invalid API key.")
    if status in (402, 403):
        # Example 05 (402, what the CLI expects) and the 403 peers observed: implement both.
        return RequestRejected(status, f"Model not in plan: {model}")
    if status == 429 and not params.retryable:
        return usage_window_error(params.window)
    if status == 429:
        # A plain rate limit: no window marker, so clients retry it (§9.2).
        return RequestRejected(
            429, "Too many requests: user concurrency limit exceeded", headers=((b"retry-after", b"1"),)
        )
    if status == 500:
        return RequestRejected(500, "Internal server error")
    return RequestRejected(status, _status_phrase(status))
