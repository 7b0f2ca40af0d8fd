"""Client-facing errors: invalid requests, and the one table from failures to statuses.

Both surfaces render the same ``ClientError``; only the envelope differs (OpenAI
``{"error": {...}}``, Anthropic ``{"type": "error", "error": {...}}``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from proxy.translate.failures import FailureKind, UpstreamFailure


class InvalidRequest(Exception):
    """The client's request cannot be served as sent; the message tells the client why."""

    def __init__(
        self, message: str, *, param: str | None = None, code: str | None = None, status: int = 400
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code
        self.status = status


@dataclass(frozen=True, slots=True)
class ErrorClass:
    """One row of the error table: statuses and type names per surface."""

    openai_status: int
    openai_type: str
    anthropic_status: int
    anthropic_type: str


INVALID_REQUEST = ErrorClass(400, "invalid_request_error", 400, "invalid_request_error")
TOO_LARGE = ErrorClass(413, "invalid_request_error", 413, "request_too_large")
AUTHENTICATION = ErrorClass(401, "invalid_request_error", 401, "authentication_error")
PERMISSION = ErrorClass(403, "permission_error", 403, "permission_error")
NOT_FOUND = ErrorClass(404, "invalid_request_error", 404, "not_found_error")
METHOD_NOT_ALLOWED = ErrorClass(405, "invalid_request_error", 405, "invalid_request_error")
RATE_LIMIT = ErrorClass(429, "requests", 429, "rate_limit_error")
QUOTA = ErrorClass(429, "insufficient_quota", 429, "rate_limit_error")
UPSTREAM = ErrorClass(502, "server_error", 502, "api_error")
OVERLOADED = ErrorClass(502, "server_error", 529, "overloaded_error")
TIMEOUT = ErrorClass(504, "server_error", 504, "timeout_error")
INTERNAL = ErrorClass(500, "server_error", 500, "api_error")
UNAVAILABLE = ErrorClass(503, "server_error", 503, "api_error")


@dataclass(frozen=True, slots=True)
class ClientError:
    error_class: ErrorClass
    message: str
    code: str | None = None
    param: str | None = None
    retry_after: float | None = None
    # False: answered with `x-should-retry: false`, which the OpenAI and Anthropic SDKs obey
    # over their own retry-on-5xx rule.
    should_retry: bool | None = None

    def headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        if self.retry_after is not None:
            headers["Retry-After"] = str(max(1, math.ceil(self.retry_after)))
        if self.should_retry is not None:
            headers["x-should-retry"] = "true" if self.should_retry else "false"
        return headers


def invalid_request_error(exc: InvalidRequest) -> ClientError:
    error_class = {413: TOO_LARGE, 404: NOT_FOUND, 403: PERMISSION}.get(exc.status, INVALID_REQUEST)
    return ClientError(error_class, exc.message, code=exc.code, param=exc.param)


def authentication_error(message: str = "Invalid or missing API key.") -> ClientError:
    return ClientError(AUTHENTICATION, message, code="invalid_api_key")


# The one mapping from failure kinds to what clients see (protocol §9 -> both surfaces).
_FAILURE_TABLE: dict[FailureKind, tuple[ErrorClass, str, str]] = {
    FailureKind.RETRYABLE: (UPSTREAM, "upstream_error", "Command Code failed: {message}"),
    FailureKind.FAILED: (UPSTREAM, "upstream_error", "Command Code failed: {message}"),
    FailureKind.OVERLOADED: (OVERLOADED, "upstream_overloaded", "Command Code is overloaded: {message}"),
    FailureKind.TIMEOUT: (TIMEOUT, "upstream_timeout", "{message}"),
    FailureKind.CREDENTIAL: (
        UPSTREAM,
        "upstream_credential_rejected",
        "The gateway's Command Code credential was refused; an operator must replace it.",
    ),
    FailureKind.MODEL: (
        PERMISSION,
        "model_not_in_plan",
        "Model not available in the team's Command Code plan: {message}",
    ),
    FailureKind.WINDOW: (RATE_LIMIT, "usage_window_exhausted", "{message}"),
    FailureKind.QUOTA: (QUOTA, "insufficient_quota", "Command Code credits exhausted: {message}"),
    FailureKind.NOT_FOUND: (NOT_FOUND, "model_not_found", "Unknown model: {message}"),
    FailureKind.REQUEST: (
        INVALID_REQUEST,
        "upstream_rejected_request",
        "Command Code rejected the request: {message}",
    ),
}


def upstream_error(failure: UpstreamFailure) -> ClientError:
    error_class, code, template = _FAILURE_TABLE[failure.kind]
    return ClientError(
        error_class,
        template.format(message=failure.message),
        code=code,
        retry_after=failure.retry_after if error_class in (RATE_LIMIT, QUOTA) else None,
    )


def openai_error_body(error: ClientError) -> dict[str, Any]:
    return {
        "error": {
            "message": error.message,
            "type": error.error_class.openai_type,
            "param": error.param,
            "code": error.code,
        }
    }


def anthropic_error_body(error: ClientError) -> dict[str, Any]:
    return {"type": "error", "error": {"type": error.error_class.anthropic_type, "message": error.message}}


class FailedResponse(Exception):
    """A response the gateway refuses to pass off as valid (e.g. non-JSON for a json_schema)."""

    def __init__(self, error: ClientError) -> None:
        super().__init__(error.message)
        self.error = error
