"""POST /v1/chat/completions: the OpenAI Chat Completions surface."""

from __future__ import annotations

import secrets
import time
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from ninja import Router

from proxy.auth import client_key_auth
from proxy.generation import generate, record_refusal
from proxy.outcomes import OPENAI_CHAT
from proxy.requests import parse_and_translate
from proxy.token_calibration import calibrated_estimate
from proxy.translate.errors import InvalidRequest
from proxy.translate.openai_in import ChatRequest, parse_chat_request
from proxy.translate.openai_out import ChatEncoder

router = Router(auth=client_key_auth, tags=["openai"])


@router.post("/chat/completions")
async def chat_completions(request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
    def translate(body: dict[str, Any]) -> tuple[ChatRequest, tuple[int, int]]:
        chat = parse_chat_request(body, request.headers, allow_remote_images=settings.CCSITE_IMAGE_FETCH)
        return chat, calibrated_estimate(chat.upstream)

    def refused(body: dict[str, Any], exc: InvalidRequest) -> None:
        record_refusal(request, OPENAI_CHAT, request.auth, body, exc)  # type: ignore[attr-defined]

    chat, estimate = await parse_and_translate(request, translate, refused)

    def encoder() -> ChatEncoder:
        return ChatEncoder(
            chat,
            completion_id=f"chatcmpl-{secrets.token_hex(12)}",
            created=int(time.time()),
            reasoning_content=settings.CCSITE_REASONING_CONTENT,
            allow_empty_length=settings.CCSITE_ALLOW_EMPTY_LENGTH,
            input_estimate=estimate[0],
        )

    return await generate(
        request,
        OPENAI_CHAT,
        request.auth,  # type: ignore[attr-defined]
        chat.upstream,
        encoder,
        streaming=chat.stream,
        input_estimate=estimate,
    )
