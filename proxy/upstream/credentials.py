"""The upstream client's view of credentials: a key to send, and who picks it.

``proxy/routing.py`` implements ``CredentialChooser``; the upstream client asks it for a
credential before every attempt and reports how each attempt went, which is where failover
across keys and cooldowns plug in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from proxy.translate.failures import UpstreamFailure


@dataclass(frozen=True, slots=True)
class Credential:
    id: int
    label: str
    api_key: str = field(repr=False)  # never in logs or tracebacks


class CredentialChooser(Protocol):
    async def choose(self, failed: Credential | None, failure: UpstreamFailure | None) -> Credential | None:
        """The credential for the next attempt (None: give up with the last failure).

        Returning ``failed`` again means "retry the same key" (only for retryable failures, with
        backoff, at most CC_MAX_RETRIES times); another credential is a failover (no wait)."""

    async def report(self, credential: Credential, failure: UpstreamFailure | None) -> None:
        """How an attempt with ``credential`` went (None: the upstream accepted it)."""

    def finish(self) -> None:
        """The stream is over (done, failed or cancelled): release what the choice holds."""
