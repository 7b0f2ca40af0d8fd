"""Figures from load-generator samples, and the table the benchmark prints."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


def percentile(values: Sequence[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


@dataclass
class RunFigures:
    """One load run against one target."""

    label: str
    ok: int
    errors: int
    error_kinds: dict[str, int]
    wall: float
    events: int
    ttfb_p50_ms: float
    ttfb_p99_ms: float
    ttft_p50_ms: float
    ttft_p99_ms: float
    total_p50_ms: float
    total_p99_ms: float
    cpu_seconds: float | None = None  # the gateway's, during the run (None for direct)
    all_events: int = 0  # events including warm-up, for CPU per event
    all_requests: int = 0  # requests including warm-up, for CPU per request
    rss_peak_mb: float | None = None
    rss_idle_mb: float | None = None

    @property
    def requests_per_second(self) -> float:
        return self.ok / self.wall if self.wall else 0.0

    @property
    def events_per_second(self) -> float:
        return self.events / self.wall if self.wall else 0.0

    @property
    def cpu_ms_per_request(self) -> float | None:
        if self.cpu_seconds is None or not self.all_requests:
            return None
        return self.cpu_seconds / self.all_requests * 1e3

    @property
    def cpu_us_per_event(self) -> float | None:
        if self.cpu_seconds is None or not self.all_events:
            return None
        return self.cpu_seconds / self.all_events * 1e6


def figures(label: str, result: dict[str, Any], warmup_events: int = 0) -> RunFigures:
    samples = result["samples"]
    ok = [s for s in samples if s["ok"]]
    kinds: dict[str, int] = {}
    for sample in samples:
        if not sample["ok"]:
            kinds[sample["error"]] = kinds.get(sample["error"], 0) + 1
    ms = 1000.0
    events = sum(s["events"] for s in ok)
    return RunFigures(
        label=label,
        ok=len(ok),
        errors=len(samples) - len(ok),
        error_kinds=kinds,
        wall=result["wall"],
        events=events,
        ttfb_p50_ms=percentile([s["first_byte"] for s in ok], 0.5) * ms,
        ttfb_p99_ms=percentile([s["first_byte"] for s in ok], 0.99) * ms,
        ttft_p50_ms=percentile([s["first_token"] for s in ok], 0.5) * ms,
        ttft_p99_ms=percentile([s["first_token"] for s in ok], 0.99) * ms,
        total_p50_ms=percentile([s["total"] for s in ok], 0.5) * ms,
        total_p99_ms=percentile([s["total"] for s in ok], 0.99) * ms,
        all_events=events + warmup_events,
        all_requests=len(samples) + int(result.get("warmup_requests", 0)),
    )


def _fmt(value: float | None, digits: int = 1) -> str:
    if value is None or value != value:  # None or NaN
        return "-"
    return f"{value:,.{digits}f}"


HEADER = (
    f"{'run':<30} {'ok':>7} {'err':>5} {'req/s':>9} {'events/s':>11} {'TTFB p50':>9} {'p99':>8} "
    f"{'TTFT p50':>9} {'p99':>8} {'CPU us/ev':>10} {'RSS MB':>8}"
)


def row(run: RunFigures) -> str:
    return (
        f"{run.label:<30} {run.ok:>7} {run.errors:>5} {_fmt(run.requests_per_second):>9} "
        f"{_fmt(run.events_per_second, 0):>11} {_fmt(run.ttfb_p50_ms, 2):>9} {_fmt(run.ttfb_p99_ms, 2):>8} "
        f"{_fmt(run.ttft_p50_ms, 2):>9} {_fmt(run.ttft_p99_ms, 2):>8} {_fmt(run.cpu_us_per_event, 1):>10} "
        f"{_fmt(run.rss_peak_mb, 1):>8}"
    )


def ratio_row(gateway: RunFigures, direct: RunFigures, title: str = "  gateway / direct") -> str:
    def ratio(a: float, b: float) -> str:
        return f"{a / b:.2f}x" if b else "-"

    overhead_ms = gateway.ttft_p50_ms - direct.ttft_p50_ms
    throughput = ratio(gateway.events_per_second, direct.events_per_second)
    return (
        f"{title:<30} throughput {throughput}, "
        f"req/s {ratio(gateway.requests_per_second, direct.requests_per_second)}, "
        f"TTFT p50 +{overhead_ms:.2f} ms, p99 {ratio(gateway.ttft_p99_ms, direct.ttft_p99_ms)}"
    )
