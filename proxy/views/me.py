"""GET /v1/me: the calling key, its user, allowed models, limits with current use, usage this
period. For status bars and scripts; OpenAI-style JSON, errors in the caller's envelope."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from ninja import Router

from accounts.keycache import KeyPrincipal
from accounts.status import aperiod_usage, limits_with_use, reporting_period
from proxy.auth import client_key_auth
from proxy.outcomes import ME, record_outcome
from proxy.request_meta import start_outcome
from proxy.surfaces import json_response

router = Router(auth=client_key_auth, tags=["me"])


@router.get("/me")
async def me(request: HttpRequest) -> HttpResponse:
    principal: KeyPrincipal = request.auth  # type: ignore[attr-defined]
    outcome = start_outcome(request, ME, principal)
    try:
        limits = principal.limits
        period = reporting_period(limits)
        key_usage = await aperiod_usage(period, key_id=principal.key_id)
        user_usage = await aperiod_usage(period, user_id=principal.user_id)
        models = limits.models if limits is not None else None
        body = {
            "object": "me",
            "user": {"id": principal.user_id, "username": principal.username},
            "key": {"name": principal.key_name, "prefix": principal.key_prefix},
            # null: every model the gateway serves.
            "allowed_models": list(models.patterns) if models is not None else None,
            "limits": await limits_with_use(limits),
            "usage": {"key": key_usage.as_json(), "user": user_usage.as_json()},
        }
        outcome.status, outcome.http_status = "ok", 200
    finally:
        record_outcome(outcome)  # served, or cancelled when the client left
    return json_response(body)
