"""POST /v1/chat/completions: the OpenAI Chat Completions surface."""

from __future__ import annotations

import time
from typing import Any

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from ninja import Router

from ccsite.settings_cache import cached_settings
from proxy.auth import client_key_auth
from proxy.generation import serve_translated
from proxy.ids import random_hex
from proxy.outcomes import OPENAI_CHAT
from proxy.translate.openai_in import ChatRequest, parse_chat_request
from proxy.translate.openai_out import ChatEncoder

router = Router(auth=client_key_auth, tags=["openai"])


@router.post("/chat/completions")
async def chat_completions(request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
    def translate(body: dict[str, Any]) -> ChatRequest:
        return parse_chat_request(
            body, request.headers, allow_remote_images=cached_settings.CCSITE_IMAGE_FETCH
        )

    def encoder(chat: ChatRequest, estimate: tuple[int, int]) -> ChatEncoder:
        return ChatEncoder(
            chat,
            completion_id=f"chatcmpl-{random_hex(12)}",
            created=int(time.time()),
            reasoning_content=cached_settings.CCSITE_REASONING_CONTENT,
            allow_empty_length=cached_settings.CCSITE_ALLOW_EMPTY_LENGTH,
            input_estimate=estimate[0],
        )

    return await serve_translated(request, OPENAI_CHAT, translate, encoder)
