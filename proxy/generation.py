"""The path every generating /v1 request takes once its surface has translated it.

Remote images are fetched, the upstream is opened (which decides the HTTP status), and the
answer is relayed by the surface's encoder. Every request leaves one ``RequestOutcome``:
refused, failed, cancelled or served.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpResponse, StreamingHttpResponse

from accounts.keycache import KeyPrincipal
from proxy.imagefetch import fetch_remote_images
from proxy.outcomes import RequestOutcome, record_outcome
from proxy.routing import open_upstream
from proxy.streaming import failure_outcome, respond
from proxy.translate.encoding import Encoder
from proxy.translate.errors import FailedResponse, InvalidRequest
from proxy.translate.wire import UpstreamRequest
from proxy.upstream.errors import UpstreamError


def record_refusal(surface: str, principal: KeyPrincipal | None, body: object, exc: InvalidRequest) -> None:
    """A request refused before translation still counts (request logs, per-user limits)."""
    model = body.get("model") if isinstance(body, dict) else None
    outcome = RequestOutcome(surface, principal, model if isinstance(model, str) else "", "", False)
    outcome.set_error("invalid_request", exc.message, status="invalid")
    record_outcome(outcome)


async def generate(
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
    outcome = RequestOutcome(
        surface, principal, upstream_request.client_model, upstream_request.model, streaming
    )
    if principal is not None:
        # One user's conversation id can never select another user's upstream thread.
        upstream_request.session_scope = f"user:{principal.user_id}"
    if input_estimate is not None:
        outcome.estimated_input_tokens = input_estimate[1]
    try:
        await fetch_remote_images(upstream_request.messages)
        stream = await open_upstream(principal, upstream_request)
    except UpstreamError as exc:
        failure_outcome(outcome, exc.failure)
        raise
    except FailedResponse as exc:  # e.g. no upstream credential for this model
        outcome.set_error(exc.error.code or "failed", exc.error.message)
        record_outcome(outcome)
        raise
    except InvalidRequest as exc:  # e.g. a remote image that could not be fetched
        outcome.set_error(exc.code or "invalid_request", exc.message, status="invalid")
        record_outcome(outcome)
        raise
    except BaseException:
        record_outcome(outcome)  # cancelled while opening: the client went away
        raise
    return await respond(stream, make_encoder(), outcome, streaming=streaming)
