"""The contract every surface's encoder follows (one instance per response).

The upstream always streams, so one encoder serves both replies: a streaming reply sends what
``start``/``feed``/``close`` return as they happen; a non-streaming reply feeds every event and
then asks for ``final_body()``. Failures never reach ``feed``: the upstream client raises them,
and the streaming layer calls ``fail`` (after the 200) or renders an error status (before it).
"""

from __future__ import annotations

from typing import Any, Protocol

from proxy.translate.events import UpstreamEvent, Usage
from proxy.translate.failures import UpstreamFailure


class Encoder(Protocol):
    @property
    def done(self) -> bool:
        """True once nothing more is wanted from the upstream (e.g. a stop sequence matched)."""

    @property
    def usage(self) -> Usage | None:
        """The upstream's usage, once its finish event arrived."""

    def estimated_usage(self) -> Usage:
        """The gateway's estimate (input estimator, relayed output) for a reply whose upstream
        usage never arrived; what the client was told in that case."""

    def start(self) -> bytes:
        """The first bytes, sent as soon as the upstream accepted (this flushes the headers)."""

    def feed(self, event: UpstreamEvent) -> bytes:
        """Frames for one event (often empty)."""

    def ping(self) -> bytes:
        """A keep-alive frame for a quiet upstream."""

    def fail(self, failure: UpstreamFailure) -> bytes:
        """Frames that report a failure after the 200 and end the stream."""

    def close(self) -> bytes:
        """Frames that end a successful stream (open blocks closed, final usage, terminator)."""

    def final_body(self) -> dict[str, Any]:
        """The non-streaming reply, from the same state; may raise FailedResponse."""
