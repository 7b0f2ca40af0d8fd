"""The process-wide token-count calibration, fed from finished requests.

A surface that estimated a request's input tokens puts the raw estimate in
``RequestOutcome.estimated_input_tokens``; when the upstream's usage arrives, the recorder
compares the two for that upstream model. ``count_tokens`` answers with the calibrated value
of ``calibrated_estimate``.
"""

from __future__ import annotations

from proxy import outcomes
from proxy.outcomes import RequestOutcome
from proxy.translate.token_count import Calibration, estimate_input_tokens
from proxy.translate.wire import UpstreamRequest

calibration = Calibration()
_installed = False


def calibration_recorder(outcome: RequestOutcome) -> None:
    """Learn from one finished request that carried both an estimate and real usage."""
    usage = outcome.usage
    estimated = outcome.estimated_input_tokens
    if not estimated or usage is None or usage.input_tokens <= 0 or not outcome.upstream_model:
        return
    calibration.observe(outcome.upstream_model, estimated, usage.input_tokens)


def calibrated_estimate(request: UpstreamRequest) -> tuple[int, int]:
    """(calibrated, raw) input-token estimates: the calibrated one answers count_tokens, the
    raw one goes in ``RequestOutcome.estimated_input_tokens`` for the recorder to learn from."""
    raw = estimate_input_tokens(request)
    return calibration.estimate(request.model, raw), raw


def install() -> None:
    """Subscribe the recorder to finished requests (from the app's ready(); idempotent)."""
    global _installed
    if not _installed:
        outcomes.add_recorder(calibration_recorder)
        _installed = True
