"""GET /v1/models: the catalog, in the OpenAI or (with anthropic-version) the Anthropic shape."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from ninja import Router

from proxy.auth import client_key_auth
from proxy.outcomes import MODELS, record_outcome
from proxy.request_meta import start_outcome
from proxy.surfaces import Surface, json_response, surface_of
from proxy.translate import catalog, models_out
from proxy.translate.errors import InvalidRequest, invalid_request_error

router = Router(auth=client_key_auth, tags=["models"])


def _record_served(request: HttpRequest, client_model: str = "", model: str = "") -> None:
    outcome = start_outcome(request, MODELS, request.auth, client_model=client_model, upstream_model=model)  # type: ignore[attr-defined]
    outcome.status, outcome.http_status = "ok", 200
    record_outcome(outcome)


@router.get("/models")
async def list_models(request: HttpRequest) -> HttpResponse:
    _record_served(request)
    models = catalog.all_models()
    if surface_of(request) is Surface.ANTHROPIC:
        return json_response(models_out.anthropic_model_list(models))
    return json_response(models_out.openai_model_list(models))


@router.get("/models/{path:model_id}")
async def get_model(request: HttpRequest, model_id: str) -> HttpResponse:
    info = catalog.resolve(model_id)
    if info is None:
        exc = InvalidRequest(f"The model {model_id!r} does not exist.", code="model_not_found", status=404)
        outcome = start_outcome(request, MODELS, request.auth, client_model=model_id)  # type: ignore[attr-defined]
        outcome.set_error("model_not_found", exc.message, status="invalid", error=invalid_request_error(exc))
        record_outcome(outcome)
        raise exc
    _record_served(request, model_id, info.id)
    if surface_of(request) is Surface.ANTHROPIC:
        return json_response(models_out.anthropic_model(info))
    return json_response(models_out.openai_model(info))
