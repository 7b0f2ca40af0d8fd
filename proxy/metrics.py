"""Prometheus metrics of the /v1 API, fed once per request from ``proxy.outcomes``.

A recorder on ``add_recorder`` turns each finished request into counter and histogram updates
(a few dictionary look-ups: never per stream event, never a query). Labels carry the surface
under the request log's names (``openai-chat``, ``anthropic-messages``, ``count-tokens``,
``responses``, ``models``, ``me``), the model served (the catalog's upstream id, as the usage
report's by-model table has it; ``unknown`` when the name did not resolve), the outcome, the HTTP
status, the failure kind and the upstream credential's operator-chosen label; never a key, a
user or any other secret. Upstream errors are counted per failed attempt by routing (one
credential refused, then another one serving, is still a sample), so ``record`` counts only
the failures no routed credential reported. Two gauges are moved by the code that owns the
fact: routing (a concurrency slot taken or given back) and the request-log writer (its queue
depth after each flush, and every row it had to drop).

With several processes (``make cluster``, systemd, Compose), set ``PROMETHEUS_MULTIPROC_DIR``
to an empty folder shared by the processes of one host before they start: prometheus_client
then keeps values in files there, and ``GET /metrics`` on any process reports the sum. Gauges
are ``livesum``: a process that exits cleanly removes its own (``mark_process_dead`` in the
shutdown hooks); after a SIGKILL its last values stay until the folder is emptied at the next
start.

Metric names (Prometheus conventions: ``_total`` counters, ``_seconds`` histograms):
    ccsite_requests_total{surface, model, outcome, status}
    ccsite_tokens_total{surface, model, kind}   kind: input, cache_read, cache_write, output, reasoning
    ccsite_time_to_first_token_seconds{surface, model}
    ccsite_request_duration_seconds{surface, model, outcome}
    ccsite_upstream_errors_total{kind, credential}
    ccsite_limit_refusals_total{surface, kind}
    ccsite_credential_in_flight{credential}     requests holding a credential's slot now
    ccsite_request_log_queue_depth               rows waiting for the database
    ccsite_request_log_dropped_total             rows dropped because the queue was full
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import REGISTRY as DEFAULT_REGISTRY
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess

from proxy.outcomes import RequestOutcome, add_recorder
from proxy.translate.failures import FailureKind

# Seconds; streams of long answers run for minutes, first tokens come within seconds.
_TTFT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120)
_DURATION_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)

REQUESTS = Counter("ccsite_requests", "Finished /v1 requests.", ("surface", "model", "outcome", "status"))
TOKENS = Counter("ccsite_tokens", "Tokens of finished /v1 requests.", ("surface", "model", "kind"))
TIME_TO_FIRST_TOKEN = Histogram(
    "ccsite_time_to_first_token_seconds",
    "Seconds from a request's arrival to its first visible token.",
    ("surface", "model"),
    buckets=_TTFT_BUCKETS,
)
DURATION = Histogram(
    "ccsite_request_duration_seconds",
    "Seconds from a /v1 request's arrival to its end (a stream's last byte).",
    ("surface", "model", "outcome"),
    buckets=_DURATION_BUCKETS,
)
UPSTREAM_ERRORS = Counter(
    "ccsite_upstream_errors",
    "Failed upstream attempts, per credential (failed-over attempts included).",
    ("kind", "credential"),
)
LIMIT_REFUSALS = Counter(
    "ccsite_limit_refusals",
    "Requests refused by a per-key or per-user limit (429; 403 for a model the key may not use).",
    ("surface", "kind"),
)
CREDENTIAL_IN_FLIGHT = Gauge(
    "ccsite_credential_in_flight",
    "Requests holding a concurrency slot of the upstream credential now.",
    ("credential",),
    multiprocess_mode="livesum",
)
LOG_QUEUE_DEPTH = Gauge(
    "ccsite_request_log_queue_depth",
    "Request log rows waiting to be written.",
    multiprocess_mode="livesum",
)
LOG_DROPPED = Counter("ccsite_request_log_dropped", "Request log rows dropped because the queue was full.")

_UPSTREAM_KINDS = frozenset(str(kind) for kind in FailureKind)
# A response status when the path did not note one (outcome.http_status 0): 499 is the
# de facto code (nginx) for a client that went away; 0 means the status is not known.
_FALLBACK_STATUS = {"ok": "200", "cancelled": "499"}


_children: dict[tuple[Any, ...], Any] = {}


def child(metric: Any, *labels: str) -> Any:
    """``metric.labels(*labels)``, remembered. prometheus_client checks and converts the label
    values on every call (about 2.5 us); the same values always name the same child, and
    prometheus_client keeps every child it made anyway, so this holds nothing more."""
    key = (metric, *labels)
    found = _children.get(key)
    if found is None:
        found = _children[key] = metric.labels(*labels)
    return found


def record(outcome: RequestOutcome) -> None:
    """The outcome recorder: one update per metric of the finished request."""
    # The catalog's id, bounded by the operator; never the name the client typed (unbounded:
    # unknown names, other spellings, anything a wildcard alias such as claude-haiku-* matches).
    surface, model = outcome.surface, outcome.upstream_model or "unknown"
    status = str(outcome.http_status) if outcome.http_status else _FALLBACK_STATUS.get(outcome.status, "0")
    child(REQUESTS, surface, model, outcome.status, status).inc()
    child(DURATION, surface, model, outcome.status).observe(outcome.duration_ms / 1000)
    if outcome.first_token_ms is not None:
        child(TIME_TO_FIRST_TOKEN, surface, model).observe(outcome.first_token_ms / 1000)
    usage = outcome.usage
    if usage is not None:
        for kind, count in (
            ("input", usage.input_tokens),
            ("cache_read", usage.cache_read_tokens),
            ("cache_write", usage.cache_write_tokens),
            ("output", usage.output_tokens),
            ("reasoning", usage.reasoning_tokens),
        ):
            if count:
                child(TOKENS, surface, model, kind).inc(count)
    if outcome.error_kind in _UPSTREAM_KINDS and not outcome.credential_id:
        # A routed credential's failures were counted by routing, attempt by attempt.
        child(UPSTREAM_ERRORS, outcome.error_kind, outcome.credential_label).inc()
    elif outcome.status == "limited":  # a ccsite limit, not the upstream's or routing's 429
        child(LIMIT_REFUSALS, surface, outcome.error_kind or "limit").inc()


def install() -> None:
    add_recorder(record)


def forget_this_process() -> None:
    """Remove this process's live gauges from the shared folder (a shutdown hook)."""
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if path:
        multiprocess.mark_process_dead(os.getpid(), path)


def exposition() -> bytes:
    """The text format of every metric: this process's, or all processes' in multi-process mode."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(DEFAULT_REGISTRY)
