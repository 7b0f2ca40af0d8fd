"""What became of each /v1 request, recorded once when it ends (success, failure or cancel).

``record_outcome`` is the seam for request logs, usage reports and per-user limits: it runs in
the response's ``finally`` and must stay cheap (no awaits, no queries); anything that writes
to the database is queued and done off the hot path.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from accounts.keycache import KeyPrincipal
from proxy.translate.errors import ClientError, upstream_error
from proxy.translate.events import Usage
from proxy.translate.failures import UpstreamFailure

logger = logging.getLogger(__name__)

# The names request logs and reports use for the /v1 surfaces.
OPENAI_CHAT = "openai-chat"
ANTHROPIC_MESSAGES = "anthropic-messages"
COUNT_TOKENS = "count-tokens"
RESPONSES = "responses"
MODELS = "models"
ME = "me"  # GET /v1/me
_ANTHROPIC_ENVELOPE = frozenset({ANTHROPIC_MESSAGES, COUNT_TOKENS})
# A client that went away before any response was sent (nginx's "client closed request").
CLIENT_CLOSED_REQUEST = 499


def error_http_status(surface: str, error: ClientError) -> int:
    """The HTTP status the surface's envelope gives this error (proxy/surfaces.error_response)."""
    if surface in _ANTHROPIC_ENVELOPE:
        return error.error_class.anthropic_status
    return error.error_class.openai_status


@dataclass(slots=True)
class RequestOutcome:
    surface: str
    principal: KeyPrincipal | None
    client_model: str
    upstream_model: str
    streaming: bool
    started_at: float = field(default_factory=time.monotonic)
    # Until the response finishes one way or the other, a request counts as cancelled: the
    # client went away (Django cancels the response task) before it ended.
    status: str = "cancelled"
    error_kind: str = ""
    error_message: str = ""
    usage: Usage | None = None
    # The gateway's own input-token estimate, when a surface made one (count_tokens calibration).
    estimated_input_tokens: int | None = None
    # True when ``usage`` is the gateway's estimate rather than what the upstream reported
    # (a stream the gateway ended early, a cancel before the upstream's usage arrived).
    usage_estimated: bool = False
    # Filled by the parts of the path that know them; request logs and limits read them.
    request_id: str = ""
    http_status: int = 0
    credential_id: int | None = None
    credential_label: str = ""
    failovers: int = 0
    first_token_ms: float | None = None
    user_agent: str = ""
    session_id: str = ""
    # What the request holds under per-user limits (proxy.limits.Admission), settled when it ends.
    admission: Any = None

    def fail(self, failure: UpstreamFailure) -> None:
        """An upstream failure; its HTTP status unless the response had already begun (200)."""
        self.set_error(str(failure.kind), failure.message)
        if not self.http_status:
            self.http_status = error_http_status(self.surface, upstream_error(failure))

    def set_error(
        self, kind: str, message: str, *, status: str = "error", error: ClientError | None = None
    ) -> None:
        self.status, self.error_kind, self.error_message = status, kind, message
        if error is not None and not self.http_status:
            self.http_status = error_http_status(self.surface, error)

    def mark_first_token(self) -> None:
        """The first visible output (text, reasoning or a tool call) reached the encoder."""
        if self.first_token_ms is None:
            self.first_token_ms = (time.monotonic() - self.started_at) * 1000

    @property
    def reached_upstream(self) -> bool:
        """The upstream may have generated for this request: it answered 200, or the client
        left while it could have been running. A request that failed before (a refusal, an
        upstream error status, no credential) generated nothing and costs no tokens."""
        return self.status == "cancelled" or self.http_status == 200

    @property
    def duration_ms(self) -> float:
        return (time.monotonic() - self.started_at) * 1000


Recorder = Callable[[RequestOutcome], None]
_recorders: list[Recorder] = []


def add_recorder(recorder: Recorder) -> None:
    """Subscribe to finished requests (request logs, token-count calibration, ...)."""
    _recorders.append(recorder)


def record_outcome(outcome: RequestOutcome) -> None:
    for recorder in _recorders:
        try:
            recorder(outcome)
        except Exception:  # a broken recorder must never break a response
            logger.exception("request outcome recorder %r failed", recorder)
