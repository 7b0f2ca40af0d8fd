"""The one exception type for every upstream failure (wraps the pure UpstreamFailure)."""

from __future__ import annotations

from proxy.translate.failures import UpstreamFailure


class UpstreamError(Exception):
    def __init__(self, failure: UpstreamFailure) -> None:
        super().__init__(f"{failure.kind}: {failure.message}")
        self.failure = failure
