"""The path every generating /v1 request takes once its surface has translated it.

The model name is resolved against the operator's catalog (unknown: 404, disabled: 403,
neither reaches the upstream), remote images are fetched, the upstream is opened (which
decides the HTTP status), and the answer is relayed by the surface's encoder. Every request
leaves one ``RequestOutcome``: refused, failed, cancelled or served.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse

from accounts.keycache import KeyPrincipal
from accounts.limits import KeyLimits
from catalog.snapshot import current, served_model
from proxy.imagefetch import fetch_remote_images
from proxy.limits import LimitRefused, admit
from proxy.outcomes import CLIENT_CLOSED_REQUEST, RequestOutcome, record_outcome
from proxy.request_meta import start_outcome
from proxy.requests import parse_and_translate
from proxy.routing import open_upstream
from proxy.streaming import failure_outcome, respond
from proxy.token_calibration import calibrated_estimate
from proxy.translate.encoding import Encoder
from proxy.translate.errors import FailedResponse, InvalidRequest, invalid_request_error
from proxy.translate.token_count import estimate_input_tokens
from proxy.translate.wire import UpstreamRequest
from proxy.upstream.errors import UpstreamError


def resolve_model(upstream_request: UpstreamRequest) -> None:
    """Point the request at the served model of the operator's catalog (in-process snapshot).

    Raises InvalidRequest: 404 for a name the catalog does not know, 403 for a disabled model.
    """
    client_name = upstream_request.client_model or upstream_request.model
    upstream_request.model = served_model(client_name).id


def catalog_id(upstream_request: UpstreamRequest) -> str:
    """The catalog's id for the name the client sent (enabled or not); "" for a name it does not
    know, which is whatever the client typed (unbounded: never a log's served model or a label)."""
    info = current().catalog.resolve(upstream_request.client_model or upstream_request.model)
    return info.id if info is not None else ""


def record_refusal(
    request: HttpRequest, surface: str, principal: KeyPrincipal | None, body: object, exc: InvalidRequest
) -> None:
    """A request refused before translation still counts (request logs, per-user limits)."""
    model = body.get("model") if isinstance(body, dict) else None
    stream = body.get("stream") if isinstance(body, dict) else None
    outcome = start_outcome(
        request,
        surface,
        principal,
        client_model=model if isinstance(model, str) else "",
        streaming=stream is True,
    )
    outcome.set_error(
        exc.code or "invalid_request", exc.message, status="invalid", error=invalid_request_error(exc)
    )
    record_outcome(outcome)


async def _admit(outcome: RequestOutcome, limits: KeyLimits, request: UpstreamRequest) -> None:
    """Hold the request's share of its limits on the outcome, or record and raise the refusal."""
    estimate = outcome.estimated_input_tokens
    if estimate is None:
        # Only token limits and budgets need it; rpm, concurrency and models do not.
        estimate = estimate_input_tokens(request) if limits.counts_tokens else 0
        outcome.estimated_input_tokens = estimate or None
    try:
        outcome.admission = await admit(
            limits,
            client_model=request.client_model,
            upstream_model=request.model,
            estimated_input_tokens=estimate,
        )
    except LimitRefused as exc:
        outcome.set_error(exc.error.code or "limited", exc.error.message, status="limited", error=exc.error)
        record_outcome(outcome)
        raise FailedResponse(exc.error) from None
    except BaseException:
        outcome.http_status = CLIENT_CLOSED_REQUEST
        record_outcome(outcome)  # cancelled while checking: the client went away
        raise


async def generate(
    request: HttpRequest,
    surface: str,
    principal: KeyPrincipal | None,
    upstream_request: UpstreamRequest,
    make_encoder: Callable[[], Encoder],
    *,
    streaming: bool,
    input_estimate: tuple[int, int] | None = None,
) -> HttpResponse | StreamingHttpResponse:
    """``input_estimate``: (calibrated, raw) input tokens from ``calibrated_estimate``; the
    raw one calibrates, the calibrated one stands in for usage the upstream never sent."""
    outcome = start_outcome(
        request,
        surface,
        principal,
        client_model=upstream_request.client_model,
        streaming=streaming,
        session_id=upstream_request.session_hint,
    )  # the served model is set once the name resolves
    if principal is not None:
        # One user's conversation id can never select another user's upstream thread.
        upstream_request.session_scope = f"user:{principal.user_id}"
    if input_estimate is not None:
        outcome.estimated_input_tokens = input_estimate[1]
    try:
        resolve_model(upstream_request)
    except InvalidRequest as exc:  # unknown (404) or disabled (403): never sent upstream
        outcome.upstream_model = catalog_id(upstream_request)  # a disabled model's id, or ""
        outcome.set_error(
            exc.code or "invalid_request", exc.message, status="invalid", error=invalid_request_error(exc)
        )
        record_outcome(outcome)
        raise
    # Only now: a name the catalog did not resolve is whatever the client typed, never the
    # "model served" of the log, nor a metrics label.
    outcome.upstream_model = upstream_request.model
    limits = principal.limits if principal is not None else None
    if limits is not None:
        await _admit(outcome, limits, upstream_request)
    try:
        await fetch_remote_images(upstream_request.messages)
        stream = await open_upstream(principal, upstream_request, outcome)
    except UpstreamError as exc:
        failure_outcome(outcome, exc.failure)
        raise
    except FailedResponse as exc:  # e.g. no upstream credential for this model
        outcome.set_error(exc.error.code or "failed", exc.error.message, error=exc.error)
        record_outcome(outcome)
        raise
    except InvalidRequest as exc:  # e.g. a remote image that could not be fetched
        outcome.set_error(
            exc.code or "invalid_request", exc.message, status="invalid", error=invalid_request_error(exc)
        )
        record_outcome(outcome)
        raise
    except BaseException:
        outcome.http_status = CLIENT_CLOSED_REQUEST
        record_outcome(outcome)  # cancelled while opening: the client went away
        raise
    return await respond(stream, make_encoder(), outcome, streaming=streaming)


class Translated(Protocol):
    """What every surface's parsed request carries (ChatRequest, MessagesRequest, ...)."""

    @property
    def upstream(self) -> UpstreamRequest: ...

    @property
    def stream(self) -> bool: ...


P = TypeVar("P", bound=Translated)


async def serve_translated(
    request: HttpRequest,
    surface: str,
    translate: Callable[[dict[str, Any]], P],
    make_encoder: Callable[[P, tuple[int, int]], Encoder],
) -> HttpResponse | StreamingHttpResponse:
    """The body of every generating /v1 view: ``translate(body)`` the client's JSON body (in a
    worker thread when the body is big, ``proxy.requests.parse_and_translate``; so
    ``translate`` must be thread-safe), record a request it refuses, estimate its input
    tokens, then ``generate`` with ``make_encoder(parsed, (calibrated, raw) estimate)``."""
    principal: KeyPrincipal | None = request.auth  # type: ignore[attr-defined]

    def translated(body: dict[str, Any]) -> tuple[P, tuple[int, int]]:
        parsed = translate(body)
        return parsed, calibrated_estimate(parsed.upstream)

    def refused(body: dict[str, Any], exc: InvalidRequest) -> None:
        record_refusal(request, surface, principal, body, exc)

    parsed, estimate = await parse_and_translate(request, translated, refused)
    return await generate(
        request,
        surface,
        principal,
        parsed.upstream,
        lambda: make_encoder(parsed, estimate),
        streaming=parsed.stream,
        input_estimate=estimate,
    )
