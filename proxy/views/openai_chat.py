"""POST /v1/chat/completions: the OpenAI Chat Completions surface."""

from __future__ import annotations

import secrets
import time

from django.conf import settings
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from ninja import Router

from proxy.auth import client_key_auth
from proxy.generation import generate, record_refusal
from proxy.outcomes import OPENAI_CHAT
from proxy.requests import parse_json_body
from proxy.token_calibration import calibrated_estimate
from proxy.translate.errors import InvalidRequest
from proxy.translate.openai_in import parse_chat_request
from proxy.translate.openai_out import ChatEncoder

router = Router(auth=client_key_auth, tags=["openai"])


@router.post("/chat/completions")
async def chat_completions(request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
    body = None
    try:
        body = parse_json_body(request)
        chat = parse_chat_request(body, request.headers, allow_remote_images=settings.CCSITE_IMAGE_FETCH)
    except InvalidRequest as exc:
        record_refusal(request, OPENAI_CHAT, request.auth, body, exc)  # type: ignore[attr-defined]
        raise

    def encoder() -> ChatEncoder:
        return ChatEncoder(
            chat,
            completion_id=f"chatcmpl-{secrets.token_hex(12)}",
            created=int(time.time()),
            reasoning_content=settings.CCSITE_REASONING_CONTENT,
            allow_empty_length=settings.CCSITE_ALLOW_EMPTY_LENGTH,
        )

    return await generate(
        request,
        OPENAI_CHAT,
        request.auth,  # type: ignore[attr-defined]
        chat.upstream,
        encoder,
        streaming=chat.stream,
        estimated_input_tokens=calibrated_estimate(chat.upstream)[1],
    )
