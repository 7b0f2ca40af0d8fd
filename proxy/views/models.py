"""GET /v1/models: the catalog, in the OpenAI or (with anthropic-version) the Anthropic shape."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from ninja import Router

from proxy.auth import client_key_auth
from proxy.surfaces import Surface, json_response, surface_of
from proxy.translate import catalog, models_out
from proxy.translate.errors import InvalidRequest

router = Router(auth=client_key_auth, tags=["models"])


@router.get("/models")
async def list_models(request: HttpRequest) -> HttpResponse:
    models = catalog.all_models()
    if surface_of(request) is Surface.ANTHROPIC:
        return json_response(models_out.anthropic_model_list(models))
    return json_response(models_out.openai_model_list(models))


@router.get("/models/{path:model_id}")
async def get_model(request: HttpRequest, model_id: str) -> HttpResponse:
    info = catalog.resolve(model_id)
    if info is None:
        raise InvalidRequest(f"The model {model_id!r} does not exist.", code="model_not_found", status=404)
    if surface_of(request) is Surface.ANTHROPIC:
        return json_response(models_out.anthropic_model(info))
    return json_response(models_out.openai_model(info))
