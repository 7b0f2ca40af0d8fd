"""POST /v1/messages and /v1/messages/count_tokens: the Anthropic Messages surface.

Routing is on the path alone (Claude Code calls ``/v1/messages?beta=true``); any
``anthropic-version`` and ``anthropic-beta`` are accepted.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from ninja import Router

from proxy.auth import client_key_auth
from proxy.generation import generate, record_refusal, resolve_model
from proxy.requests import parse_json_body
from proxy.signing import thinking_key
from proxy.surfaces import json_response
from proxy.token_calibration import calibrated_estimate
from proxy.translate.anthropic_in import parse_count_tokens_request, parse_messages_request
from proxy.translate.anthropic_out import MessagesEncoder
from proxy.translate.errors import InvalidRequest

router = Router(auth=client_key_auth, tags=["anthropic"])


@router.post("/messages")
async def messages(request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
    body = parse_json_body(request)
    try:
        parsed = parse_messages_request(
            body,
            request.headers,
            thinking_key=thinking_key(),
            allow_remote_images=settings.CCSITE_IMAGE_FETCH,
        )
    except InvalidRequest as exc:
        record_refusal("anthropic", request.auth, body, exc)  # type: ignore[attr-defined]
        raise

    def encoder() -> MessagesEncoder:
        return MessagesEncoder(parsed, message_id=f"msg_{secrets.token_hex(12)}", thinking_key=thinking_key())

    return await generate(
        "anthropic",
        request.auth,  # type: ignore[attr-defined]
        parsed.upstream,
        encoder,
        streaming=parsed.stream,
        estimated_input_tokens=calibrated_estimate(parsed.upstream)[1],
    )


@router.post("/messages/count_tokens")
async def count_tokens(request: HttpRequest) -> HttpResponse:
    body = parse_json_body(request)
    parsed = parse_count_tokens_request(body, request.headers, thinking_key=thinking_key())
    resolve_model(parsed.upstream)  # an unknown or disabled model is refused here too
    return json_response({"input_tokens": calibrated_estimate(parsed.upstream)[0]})
