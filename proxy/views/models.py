"""GET /v1/models: the catalog, in the OpenAI or (with anthropic-version) the Anthropic shape.

Lists the enabled models of the operator's catalog (in-process snapshot, no query), then the
exact aliases of enabled models, keeping only the names the caller's key may use when its key
or user has an allowed-models list (read from the key cache's principal: no query either).
Anthropic's shape is paginated (``limit`` 1-1000, default 20, ``after_id``, ``before_id``).
``GET /v1/models/{id}`` resolves aliases, short names and suffixes like a generation request;
unknown: 404, disabled: 403 ``model_disabled``, not allowed for the key: 403
``model_not_allowed`` (the generation path's own refusal, ``proxy.limits.check_model``).
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from ninja import Router

from accounts.keycache import KeyPrincipal
from accounts.limits import KeyLimits
from catalog.snapshot import current, served_model
from proxy.auth import client_key_auth
from proxy.limits import LimitRefused, check_model
from proxy.outcomes import MODELS, record_outcome
from proxy.request_meta import start_outcome
from proxy.surfaces import Surface, json_response, surface_of
from proxy.translate import models_out
from proxy.translate.errors import FailedResponse, InvalidRequest, invalid_request_error
from proxy.translate.models_out import Entry

router = Router(auth=client_key_auth, tags=["models"])


def _record_served(request: HttpRequest, client_model: str = "", model: str = "") -> None:
    outcome = start_outcome(request, MODELS, request.auth, client_model=client_model, upstream_model=model)  # type: ignore[attr-defined]
    outcome.status, outcome.http_status = "ok", 200
    record_outcome(outcome)


def _record_refused(request: HttpRequest, client_model: str, exc: InvalidRequest) -> None:
    outcome = start_outcome(request, MODELS, request.auth, client_model=client_model)  # type: ignore[attr-defined]
    outcome.set_error(
        exc.code or "invalid_request", exc.message, status="invalid", error=invalid_request_error(exc)
    )
    record_outcome(outcome)


def _limits_of(request: HttpRequest) -> KeyLimits | None:
    principal: KeyPrincipal | None = request.auth  # type: ignore[attr-defined]
    return principal.limits if principal is not None else None


def _record_limited(request: HttpRequest, client_model: str, model: str, exc: LimitRefused) -> None:
    outcome = start_outcome(request, MODELS, request.auth, client_model=client_model, upstream_model=model)  # type: ignore[attr-defined]
    outcome.set_error(exc.error.code or "limited", exc.error.message, status="limited", error=exc.error)
    record_outcome(outcome)


def listed_entries(limits: KeyLimits | None = None) -> list[Entry]:
    """Enabled models then exact aliases; with ``limits``, only the names its rule allows
    (a name is listed when a generation request naming it would pass ``check_model``)."""
    catalog = current().catalog
    entries: list[Entry] = [(info.id, info) for info in catalog.enabled_models()]
    entries += catalog.listed_aliases()
    rule = limits.models if limits is not None else None
    if rule is None:
        return entries
    return [(name, info) for name, info in entries if rule.allows(name, info.id)]


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
    entries = listed_entries(_limits_of(request))
    if surface_of(request) is Surface.ANTHROPIC:
        try:
            limit = _limit(request.GET.get("limit"))
        except InvalidRequest as exc:
            _record_refused(request, "", exc)
            raise
        _record_served(request)
        page = models_out.anthropic_model_page(
            entries,
            limit=limit,
            after_id=request.GET.get("after_id"),
            before_id=request.GET.get("before_id"),
        )
        return json_response(page)
    _record_served(request)
    return json_response(models_out.openai_model_list(entries))


@router.get("/models/{path:model_id}")
async def get_model(request: HttpRequest, model_id: str) -> HttpResponse:
    try:
        info = served_model(model_id)
    except InvalidRequest as exc:
        _record_refused(request, model_id, exc)
        raise
    try:
        check_model(_limits_of(request), model_id, info.id)
    except LimitRefused as exc:
        _record_limited(request, model_id, info.id, exc)
        raise FailedResponse(exc.error) from None
    _record_served(request, model_id, info.id)
    entry = (info.id, info)
    if surface_of(request) is Surface.ANTHROPIC:
        return json_response(models_out.anthropic_model(entry))
    return json_response(models_out.openai_model(entry))
