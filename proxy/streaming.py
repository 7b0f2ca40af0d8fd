"""Relay an open upstream stream to the client: SSE for streaming requests, one JSON body
otherwise. The encoder decides the bytes; this module decides when they go out.

The HTTP status is already decided when these run: the upstream answered 200 (the view opened
it first), so failures from here on are rendered by ``encoder.fail`` inside the stream.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any, Protocol

from django.http import HttpResponse, StreamingHttpResponse

from ccsite.settings_cache import cached_settings
from ccsite.stream_parts import FinalPart
from proxy.outcomes import CLIENT_CLOSED_REQUEST, RequestOutcome, record_outcome
from proxy.surfaces import json_response
from proxy.translate.encoding import Encoder
from proxy.translate.errors import FailedResponse
from proxy.translate.events import (
    ReasoningDelta,
    TextDelta,
    ToolCall,
    ToolInputDelta,
    ToolInputStart,
    UpstreamEvent,
    Usage,
)
from proxy.translate.failures import UpstreamFailure
from proxy.upstream.errors import UpstreamError

logger = logging.getLogger(__name__)

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


class EventStream(Protocol):
    """What the relay needs of proxy.upstream's UpstreamStream."""

    @property
    def usage(self) -> Usage | None: ...

    @property
    def ready(self) -> bool:
        """Events (or the end) are waiting to be read right now."""

    def batches(self, tick: float | None) -> AsyncIterator[list[UpstreamEvent]]: ...

    async def aclose(self) -> None: ...


# What a client sees as output: the first of these marks the time to first token.
VISIBLE_EVENTS = (TextDelta, ReasoningDelta, ToolInputStart, ToolInputDelta, ToolCall)


def _note_first_token(outcome: RequestOutcome, batch: list[UpstreamEvent]) -> None:
    for event in batch:
        if isinstance(event, VISIBLE_EVENTS):
            outcome.mark_first_token()
            return


def _through_first_token(batch: list[UpstreamEvent]) -> int:
    """How many of the batch's events lead up to and include its first visible one (0: none)."""
    for index, event in enumerate(batch):
        if isinstance(event, VISIBLE_EVENTS):
            return index + 1
    return 0


def _feed_batch(encoder: Encoder, batch: list[UpstreamEvent]) -> bytes:
    """Translate every event that arrived together; they go downstream as one body message."""
    if len(batch) == 1:
        return encoder.feed(batch[0])
    return b"".join(encoder.feed(event) for event in batch)


async def _relay(stream: EventStream, encoder: Encoder, outcome: RequestOutcome) -> AsyncIterator[bytes]:
    opening = encoder.start()
    try:
        if not stream.ready:
            # Daphne holds the headers until the first body bytes: send them as soon as the
            # upstream has accepted, so clients and proxies see a live response during silence.
            yield opening
            opening = b""
        # Otherwise the opening goes out with the first events: one write, not two.
        batches = stream.batches(tick=cached_settings.CCSITE_KEEPALIVE_SECONDS)
        async for batch in batches:
            if outcome.first_token_ms is None and (leading := _through_first_token(batch)):
                # The first token goes out before the rest of its batch is translated (a fast
                # upstream delivers dozens of deltas at once): one more write per stream, and
                # the client's time to first token no longer waits for the whole batch.
                outcome.mark_first_token()
                first, batch = _feed_batch(encoder, batch[:leading]), batch[leading:]
                yield opening + first
                opening = b""
                if encoder.done:
                    # Ended by its first token (a stop sequence): what came with the token is
                    # still translated below, as when the batch went out whole, so the
                    # upstream's finish and usage are reported. The reader, closed, takes in
                    # the rest of the chunk it handed the token over from.
                    await stream.aclose()
                    with contextlib.suppress(UpstreamError):
                        batch = batch + await anext(batches, [])
                if not batch:
                    if encoder.done:
                        break
                    continue
            chunk = _feed_batch(encoder, batch) if batch else encoder.ping()
            if opening:
                chunk, opening = opening + chunk, b""
            if chunk:
                yield chunk
            if encoder.done:
                break
        # The closing frames go out with the end of the response, once the clean-up below ran
        # (the events before them went out as they came: the client reads them meanwhile).
        yield FinalPart(opening + encoder.close())
        outcome.status = "ok"
    except UpstreamError as exc:
        outcome.fail(exc.failure)
        yield FinalPart(opening + encoder.fail(exc.failure))
    finally:
        # Reached on success, failure, and client disconnect (Django cancels the response
        # task, so CancelledError arrives at the current await and propagates): close the
        # upstream at once so nothing keeps running or billing.
        await stream.aclose()
        settle_usage(outcome, stream, encoder)
        record_outcome(outcome)


def settle_usage(outcome: RequestOutcome, stream: EventStream, encoder: Encoder) -> None:
    """The upstream's usage; where it never arrived (a reply the gateway ended early, a client
    that went away), the encoder's estimate, marked as such. A failed reply keeps none."""
    outcome.usage = stream.usage
    if outcome.usage is None and outcome.status in ("ok", "cancelled"):
        estimate = getattr(encoder, "estimated_usage", None)
        if estimate is not None:
            outcome.usage, outcome.usage_estimated = estimate(), True


def sse_response(stream: EventStream, encoder: Encoder, outcome: RequestOutcome) -> StreamingHttpResponse:
    outcome.http_status = 200  # the status is sent with the first body bytes
    response = StreamingHttpResponse(
        _relay(stream, encoder, outcome), content_type="text/event-stream; charset=utf-8"
    )
    for name, value in SSE_HEADERS.items():
        response[name] = value
    return response


async def collect(stream: EventStream, encoder: Encoder, outcome: RequestOutcome) -> dict[str, Any]:
    """Feed the whole upstream stream to the encoder; the non-streaming reply."""
    try:
        # No keep-alive ticks: nothing is sent before the whole reply (and no timer per request).
        async for batch in stream.batches(tick=None):
            if outcome.first_token_ms is None:
                _note_first_token(outcome, batch)
            for event in batch:
                encoder.feed(event)
            if encoder.done:
                break
        encoder.close()
        body = encoder.final_body()
        outcome.status = "ok"
        outcome.http_status = 200
        return body
    except UpstreamError as exc:
        outcome.fail(exc.failure)
        raise
    except FailedResponse as exc:  # e.g. non-JSON output for a json_schema request
        outcome.set_error("invalid_output", exc.error.message, error=exc.error)
        raise
    except BaseException:
        outcome.http_status = outcome.http_status or CLIENT_CLOSED_REQUEST
        raise
    finally:
        await stream.aclose()
        settle_usage(outcome, stream, encoder)
        record_outcome(outcome)


async def respond(
    stream: EventStream, encoder: Encoder, outcome: RequestOutcome, *, streaming: bool
) -> HttpResponse | StreamingHttpResponse:
    if streaming:
        return sse_response(stream, encoder, outcome)
    return json_response(await collect(stream, encoder, outcome))


def failure_outcome(outcome: RequestOutcome, failure: UpstreamFailure) -> None:
    """Record a request that failed before any stream was opened."""
    outcome.fail(failure)
    record_outcome(outcome)
