"""Which client surface a request speaks, so every error is rendered in its own envelope."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from django.http import HttpRequest, HttpResponse

from proxy.translate.errors import ClientError, anthropic_error_body, openai_error_body
from proxy.translate.jsonfast import dumps


class Surface(StrEnum):
    OPENAI = "openai"
    ANTHROPIC = "anthropic"


def surface_of(request: HttpRequest) -> Surface:
    path = request.path
    if path.startswith("/v1/messages"):
        return Surface.ANTHROPIC
    # GET /v1/models and /v1/me serve both; Anthropic clients always send anthropic-version.
    if path.startswith(("/v1/models", "/v1/me")) and "anthropic-version" in request.headers:
        return Surface.ANTHROPIC
    return Surface.OPENAI


def surface_name_of(request: HttpRequest) -> str:
    """The request-log name of the /v1 surface a path belongs to (proxy/outcomes.py)."""
    path = request.path
    if path.startswith("/v1/messages/count_tokens"):
        return "count-tokens"
    if path.startswith("/v1/messages"):
        return "anthropic-messages"
    if path.startswith("/v1/responses"):
        return "responses"
    if path.startswith("/v1/models"):
        return "models"
    if path.startswith("/v1/me"):
        return "me"
    return "openai-chat"


# Statuses the standard library has no phrase for (Django would say "Unknown Status Code").
REASON_PHRASES = {529: "Overloaded"}  # Anthropic's overloaded_error


def json_response(payload: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> HttpResponse:
    """A JSON response encoded once with the fast codec (no re-serialisation by Django)."""
    return HttpResponse(
        dumps(payload),
        status=status,
        headers=headers,
        content_type="application/json",
        reason=REASON_PHRASES.get(status),
    )


def error_response(surface: Surface, error: ClientError) -> HttpResponse:
    if surface is Surface.ANTHROPIC:
        status, body = error.error_class.anthropic_status, anthropic_error_body(error)
    else:
        status, body = error.error_class.openai_status, openai_error_body(error)
    return json_response(body, status=status, headers=error.headers())
