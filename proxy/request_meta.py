"""Per-request facts every /v1 outcome carries: the request id, the client's user agent and
session id, and the one place a ``RequestOutcome`` is started from a Django request.

The request id is made once per request (``req_`` + 24 hex digits: 11 of milliseconds since
the epoch, so the request log's index on it grows at its end, then 13 random), recorded in the
request log, and returned on every /v1 response as ``x-request-id`` and ``request-id`` (the header the
Anthropic SDKs read), errors included.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from accounts.keycache import KeyPrincipal
from proxy.ids import time_ordered_hex
from proxy.outcomes import CLIENT_CLOSED_REQUEST, RequestOutcome, record_outcome
from proxy.surfaces import surface_name_of
from proxy.translate.session import session_hint

REQUEST_ID_HEADERS = ("x-request-id", "request-id")
_MAX_USER_AGENT = 300
_MAX_SESSION_ID = 200


def new_request_id() -> str:
    return f"req_{time_ordered_hex(12)}"


def request_id_of(request: HttpRequest | Any) -> str:
    """This request's id, made on first use."""
    request_id: str | None = getattr(request, "ccsite_request_id", None)
    if request_id is None:
        request_id = new_request_id()
        request.ccsite_request_id = request_id
    return request_id


def stamp_request_id(request: Any, response: Any, request_id: str | None = None) -> None:
    request_id = request_id or request_id_of(request)
    for name in REQUEST_ID_HEADERS:
        response[name] = request_id


def start_outcome(
    request: HttpRequest,
    surface: str,
    principal: KeyPrincipal | None,
    *,
    client_model: str = "",
    upstream_model: str = "",
    streaming: bool = False,
    session_id: str | None = None,
) -> RequestOutcome:
    outcome = RequestOutcome(surface, principal, client_model, upstream_model, streaming)
    request.ccsite_outcome_started = True  # type: ignore[attr-defined]
    outcome.request_id = request_id_of(request)
    outcome.user_agent = request.headers.get("user-agent", "")[:_MAX_USER_AGENT]
    if session_id is None:
        session_id = session_hint(request.headers)
    outcome.session_id = (session_id or "")[:_MAX_SESSION_ID]
    return outcome


def record_cancelled_before_outcome(request: HttpRequest) -> None:
    """A /v1 client that left before the view started its outcome (while it was authenticated
    or its body parsed): still one outcome, cancelled with 499, under the key when known."""
    if getattr(request, "ccsite_outcome_started", False) or not request.path.startswith("/v1/"):
        return
    principal = getattr(request, "auth", None)
    if not isinstance(principal, KeyPrincipal):
        principal = None
    outcome = start_outcome(request, surface_name_of(request), principal)
    outcome.http_status = CLIENT_CLOSED_REQUEST
    record_outcome(outcome)
