"""GET /v1/models: the catalog, in the OpenAI or (with anthropic-version) the Anthropic shape.

Lists the enabled models of the operator's catalog (in-process snapshot, no query), then the
exact aliases of enabled models. Anthropic's shape is paginated (``limit`` 1-1000, default 20,
``after_id``, ``before_id``). ``GET /v1/models/{id}`` resolves aliases, short names and
suffixes like a generation request; unknown: 404, disabled: 403.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from ninja import Router

from catalog.snapshot import current, served_model
from proxy.auth import client_key_auth
from proxy.surfaces import Surface, json_response, surface_of
from proxy.translate import models_out
from proxy.translate.errors import InvalidRequest
from proxy.translate.models_out import Entry

router = Router(auth=client_key_auth, tags=["models"])


def listed_entries() -> list[Entry]:
    catalog = current().catalog
    entries: list[Entry] = [(info.id, info) for info in catalog.enabled_models()]
    return entries + catalog.listed_aliases()


def _limit(raw: str | None) -> int:
    if raw is None:
        return 20
    try:
        limit = int(raw)
    except ValueError:
        limit = 0
    if not 1 <= limit <= 1000:
        raise InvalidRequest("limit: an integer from 1 to 1000.", param="limit")
    return limit


@router.get("/models")
async def list_models(request: HttpRequest) -> HttpResponse:
    entries = listed_entries()
    if surface_of(request) is Surface.ANTHROPIC:
        page = models_out.anthropic_model_page(
            entries,
            limit=_limit(request.GET.get("limit")),
            after_id=request.GET.get("after_id"),
            before_id=request.GET.get("before_id"),
        )
        return json_response(page)
    return json_response(models_out.openai_model_list(entries))


@router.get("/models/{path:model_id}")
async def get_model(request: HttpRequest, model_id: str) -> HttpResponse:
    info = served_model(model_id)
    entry = (info.id, info)
    if surface_of(request) is Surface.ANTHROPIC:
        return json_response(models_out.anthropic_model(entry))
    return json_response(models_out.openai_model(entry))
