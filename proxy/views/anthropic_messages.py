"""POST /v1/messages and /v1/messages/count_tokens: the Anthropic Messages surface.

Routing is on the path alone (Claude Code calls ``/v1/messages?beta=true``); any
``anthropic-version`` and ``anthropic-beta`` are accepted.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from ninja import Router

from ccsite.settings_cache import cached_settings
from proxy.auth import client_key_auth
from proxy.generation import record_refusal, resolve_model, serve_translated
from proxy.ids import random_hex
from proxy.outcomes import ANTHROPIC_MESSAGES, COUNT_TOKENS, record_outcome
from proxy.request_meta import start_outcome
from proxy.requests import parse_and_translate
from proxy.signing import thinking_key
from proxy.surfaces import json_response
from proxy.token_calibration import calibrated_estimate
from proxy.translate.anthropic_in import MessagesRequest, parse_count_tokens_request, parse_messages_request
from proxy.translate.anthropic_out import MessagesEncoder
from proxy.translate.errors import InvalidRequest

router = Router(auth=client_key_auth, tags=["anthropic"])


@router.post("/messages")
async def messages(request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
    def translate(body: dict[str, Any]) -> MessagesRequest:
        return parse_messages_request(
            body,
            request.headers,
            thinking_key=thinking_key(),
            allow_remote_images=cached_settings.CCSITE_IMAGE_FETCH,
        )

    def encoder(parsed: MessagesRequest, estimate: tuple[int, int]) -> MessagesEncoder:
        return MessagesEncoder(
            parsed,
            message_id=f"msg_{random_hex(12)}",
            thinking_key=thinking_key(),
            input_estimate=estimate[0],
        )

    return await serve_translated(request, ANTHROPIC_MESSAGES, translate, encoder)


@router.post("/messages/count_tokens")
async def count_tokens(request: HttpRequest) -> HttpResponse:
    """Answered by the gateway alone: the outcome carries the model, no upstream tokens."""

    def count(body: dict[str, Any]) -> MessagesRequest:
        parsed = parse_count_tokens_request(body, request.headers, thinking_key=thinking_key())
        resolve_model(parsed.upstream)  # an unknown or disabled model is refused here too
        return parsed

    def refused(body: dict[str, Any], exc: InvalidRequest) -> None:
        record_refusal(request, COUNT_TOKENS, request.auth, body, exc)  # type: ignore[attr-defined]

    parsed = await parse_and_translate(request, count, refused)
    calibrated, _ = calibrated_estimate(parsed.upstream)
    outcome = start_outcome(
        request,
        COUNT_TOKENS,
        request.auth,  # type: ignore[attr-defined]
        client_model=parsed.upstream.client_model,
        upstream_model=parsed.upstream.model,
        session_id=parsed.upstream.session_hint,
    )
    outcome.status, outcome.http_status = "ok", 200
    record_outcome(outcome)
    return json_response({"input_tokens": calibrated})
