"""POST /v1/responses: the OpenAI Responses surface (Codex CLI, newer SDK code)."""

from __future__ import annotations

import secrets
import time
from typing import Any

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from ninja import Router

from accounts.keycache import KeyPrincipal
from ccsite.settings_cache import cached_settings
from proxy.auth import client_key_auth
from proxy.generation import serve_translated
from proxy.outcomes import RESPONSES
from proxy.responses_store import response_store
from proxy.signing import reasoning_key
from proxy.translate.errors import InvalidRequest
from proxy.translate.jsonfast import dumps
from proxy.translate.responses_in import ResponsesRequest, parse_responses_request
from proxy.translate.responses_out import ResponsesEncoder

router = Router(auth=client_key_auth, tags=["openai"])


def _previous_items(body: Any, principal: KeyPrincipal) -> tuple[str | None, list[dict[str, Any]]]:
    previous = body.get("previous_response_id") if isinstance(body, dict) else None
    if previous is None:
        return None, []
    if not isinstance(previous, str) or not previous:
        raise InvalidRequest("'previous_response_id' must be a string.", param="previous_response_id")
    return previous, response_store.conversation(principal.key_id, previous)


@router.post("/responses")
async def responses(request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
    principal: KeyPrincipal = request.auth  # type: ignore[attr-defined]
    previous_id: str | None = None
    response_id = f"resp_{secrets.token_hex(24)}"

    def translate(body: dict[str, Any]) -> ResponsesRequest:
        nonlocal previous_id
        previous_id, previous = _previous_items(body, principal)
        return parse_responses_request(
            body,
            request.headers,
            reasoning_key=reasoning_key(),
            previous=previous,
            allow_remote_images=cached_settings.CCSITE_IMAGE_FETCH,
        )

    def encoder(parsed: ResponsesRequest, estimate: tuple[int, int]) -> ResponsesEncoder:
        def remember(output: list[dict[str, Any]]) -> None:
            items = [*parsed.input_items, *output]
            size = len(request.body) + len(dumps(output))
            response_store.save(principal.key_id, response_id, parent=previous_id, items=items, size=size)

        return ResponsesEncoder(
            parsed,
            response_id=response_id,
            created_at=int(time.time()),
            reasoning_key=reasoning_key(),
            on_complete=remember,
            input_estimate=estimate[0],
        )

    return await serve_translated(request, RESPONSES, translate, encoder)
