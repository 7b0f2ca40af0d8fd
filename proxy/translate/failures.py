"""Upstream failures as plain data, classified once (protocol §9, §10).

Every way a Command Code call can fail (a non-2xx envelope, an in-band ``error`` line, a
network fault, a stream cut short, a timeout) becomes one ``UpstreamFailure`` whose ``kind``
says what to do about it: retry, cool a credential down, wait for a usage window, or report
the request as bad. Surfaces render failures from the kind alone (proxy/translate/errors.py).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any


class FailureKind(StrEnum):
    RETRYABLE = "retryable"  # 408, plain 429, 5xx, network, EOF without finish (§9.2, §8.3)
    OVERLOADED = "overloaded"  # 529: retryable, and shown to clients as overloaded
    TIMEOUT = "timeout"  # the gateway gave up waiting (first event, idle gap, total)
    CREDENTIAL = "credential"  # 401: this upstream key is refused
    MODEL = "model"  # 402/403 plan gating: this model is not in this key's plan
    WINDOW = "window"  # 429 RATE_LIMITED with a usage window: wait until it resets
    QUOTA = "quota"  # credits or spend cap exhausted
    NOT_FOUND = "not_found"  # the model is not recognised upstream
    REQUEST = "request"  # 400/422: the request itself is invalid
    FAILED = "failed"  # any other upstream failure that must not be retried


RETRYABLE_KINDS = frozenset({FailureKind.RETRYABLE, FailureKind.OVERLOADED})
# Failures that say something about the credential rather than the request (routing seam).
CREDENTIAL_KINDS = frozenset(
    {FailureKind.CREDENTIAL, FailureKind.MODEL, FailureKind.WINDOW, FailureKind.QUOTA}
)


@dataclass(frozen=True, slots=True)
class UpstreamFailure:
    kind: FailureKind
    status: int  # upstream HTTP or embedded status; 0 when there is none (network, timeout)
    code: str  # the upstream code (e.g. RATE_LIMITED) or a gateway code
    message: str  # safe to show a client: keys are redacted
    retry_after: float | None = None  # seconds until a retry may succeed, when known
    reset_at: int | None = None  # unix time a usage window resets, when known

    @property
    def retryable(self) -> bool:
        return self.kind in RETRYABLE_KINDS


_SECRET_PATTERNS = (
    re.compile(r"\buser_[A-Za-z0-9_\-]{6,}"),
    re.compile(r"\bccs_[A-Za-z0-9]{6,}"),
    re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._\-]{6,}"),
)
_TERMINAL_MARKERS = ("premium_credits_exhausted", "model_not_in_plan", "insufficient credits")
_WINDOW_PHRASE = re.compile(r"usage limit for your plan", re.IGNORECASE)
_RESETS_AT = re.compile(r"resets at (\d{4}-\d{2}-\d{2}T[0-9:.]+Z?)", re.IGNORECASE)
_EMBEDDED = re.compile(r"^\s*(\d{3})\s+(\{.*\})\s*$", re.DOTALL)
_MAX_MESSAGE = 500


def redact_secrets(text: str) -> str:
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub("[redacted]", text)
    return text


def _clean_message(message: Any, fallback: str) -> str:
    text = message if isinstance(message, str) and message.strip() else fallback
    return redact_secrets(text.strip())[:_MAX_MESSAGE]


def _has_marker(*texts: str) -> str | None:
    joined = " ".join(texts).lower().replace(" ", "_")
    for marker in _TERMINAL_MARKERS:
        if marker.replace(" ", "_") in joined:
            return marker
    return None


def _reset_from(error: Mapping[str, Any], message: str) -> int | None:
    rate_limit = error.get("rateLimit")
    if isinstance(rate_limit, Mapping):
        reset = rate_limit.get("reset")
        if isinstance(reset, int | float) and not isinstance(reset, bool):
            return int(reset)
    match = _RESETS_AT.search(message)
    if match:
        try:
            return int(datetime.fromisoformat(match.group(1).replace("Z", "+00:00")).timestamp())
        except ValueError:
            return None
    return None


def _is_window(error: Mapping[str, Any], message: str) -> bool:
    """§9.2 / example 06: RATE_LIMITED with a named window, or the plan-limit phrase."""
    rate_limit = error.get("rateLimit")
    window = rate_limit.get("window") if isinstance(rate_limit, Mapping) else None
    return window in ("fiveHour", "weekly", "daily") or bool(_WINDOW_PHRASE.search(message))


def _kind_for(status: int, error: Mapping[str, Any], message: str) -> FailureKind:
    code = str(error.get("code") or error.get("type") or "")
    marker = _has_marker(message, code)
    lowered = f"{code} {message}".lower()
    if code.upper() == "USAGE_EXCEEDED" or marker in ("premium_credits_exhausted", "insufficient credits"):
        return FailureKind.QUOTA
    if marker == "model_not_in_plan":
        return FailureKind.MODEL
    if status == 429:
        return FailureKind.WINDOW if _is_window(error, message) else FailureKind.RETRYABLE
    if status == 401:
        return FailureKind.CREDENTIAL
    if status == 402:
        return FailureKind.MODEL if "plan" in lowered else FailureKind.QUOTA
    if status == 403:
        return FailureKind.NOT_FOUND if "not recognized" in lowered else FailureKind.MODEL
    if status == 529:
        return FailureKind.OVERLOADED
    if status == 408 or status >= 500:
        return FailureKind.RETRYABLE
    if status in (400, 413, 422):
        return FailureKind.REQUEST
    return FailureKind.FAILED


def _retry_after_seconds(header: str | None, reset_at: int | None, now: float) -> float | None:
    if reset_at is not None:
        return max(1.0, reset_at - now)
    if header:
        try:
            return max(0.0, float(header.strip()))
        except ValueError:
            return None
    return None


def _envelope_error(body: bytes | str) -> Mapping[str, Any]:
    """The ``error`` object of a §9.1 envelope; tolerant of non-JSON bodies."""
    try:
        data = json.loads(body) if body else None
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {}
    if not isinstance(data, Mapping):
        return {}
    error = data.get("error")
    if isinstance(error, Mapping):
        return error
    if isinstance(error, str):
        return {"message": error}
    return {"message": data["message"]} if isinstance(data.get("message"), str) else {}


def classify_http_error(
    status: int, body: bytes | str, *, retry_after: str | None = None, now: float | None = None
) -> UpstreamFailure:
    """A non-2xx answer to POST /alpha/generate (§9.1, §9.2)."""
    error = _envelope_error(body)
    message = _clean_message(error.get("message"), f"POST /alpha/generate -> {status}")
    kind = _kind_for(status, error, message)
    reset_at = _reset_from(error, message) if kind is FailureKind.WINDOW else None
    now = time.time() if now is None else now
    return UpstreamFailure(
        kind=kind,
        status=status,
        code=str(error.get("code") or error.get("type") or f"http_{status}"),
        message=message,
        retry_after=_retry_after_seconds(retry_after, reset_at, now),
        reset_at=reset_at,
    )


def _embedded(message: str) -> tuple[int | None, Mapping[str, Any]]:
    """``<status> {"error": {...}}`` inside a message (the CLI's parseEmbeddedErrorJSON)."""
    match = _EMBEDDED.match(message)
    if not match:
        return None, {}
    inner = _envelope_error(match.group(2))
    return int(match.group(1)), inner


def _inband_status(error: Mapping[str, Any], embedded_status: int | None) -> int | None:
    status = error.get("statusCode", error.get("status"))
    if isinstance(status, int) and not isinstance(status, bool):
        return status
    return embedded_status


def classify_inband_error(raw: Any, *, now: float | None = None) -> UpstreamFailure:
    """An in-band ``{"type":"error","error":...}`` line (§9.3), string or object."""
    error: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {"message": raw}
    message = _clean_message(error.get("message"), "upstream stream error")
    embedded_status, inner = _embedded(message)
    if inner:
        error = {**error, **{k: v for k, v in inner.items() if k not in error or k == "message"}}
        message = _clean_message(inner.get("message"), message)
    status = _inband_status(error, embedded_status)
    is_retryable = error.get("isRetryable")
    if is_retryable is True:
        kind = FailureKind.OVERLOADED if status == 529 else FailureKind.RETRYABLE
    elif status is not None:
        kind = _kind_for(status, error, message)
    elif is_retryable is False or _has_marker(message):
        kind = _kind_for(0, error, message)
    else:
        # The CLI retries unknown in-band errors, taking the status as 500 (§9.3).
        kind = FailureKind.RETRYABLE
    reset_at = _reset_from(error, message) if kind is FailureKind.WINDOW else None
    now = time.time() if now is None else now
    return UpstreamFailure(
        kind=kind,
        status=status or 0,
        code=str(error.get("code") or error.get("type") or "stream_error"),
        message=message,
        retry_after=_retry_after_seconds(None, reset_at, now),
        reset_at=reset_at,
    )


def network_failure(detail: str) -> UpstreamFailure:
    return UpstreamFailure(
        FailureKind.RETRYABLE, 0, "network_error", f"Could not reach Command Code: {detail}"
    )


def truncated_stream_failure() -> UpstreamFailure:
    # §8.3: EOF without finish is retryable (the CLI reports it as a 502).
    return UpstreamFailure(
        FailureKind.RETRYABLE,
        502,
        "stream_truncated",
        "Command Code ended the stream before completion (no finish event).",
    )


def timeout_failure(what: str, seconds: float) -> UpstreamFailure:
    return UpstreamFailure(
        FailureKind.TIMEOUT, 0, "upstream_timeout", f"Command Code timed out: {what} after {seconds:g}s."
    )
