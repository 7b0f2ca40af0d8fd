"""The benchmark's printed table: absolute figures and same-run ratios against direct."""

from __future__ import annotations

import os
import platform

from proxy.bench.compare import render_comparison
from proxy.bench.runner import Repetition, ScenarioResult
from proxy.bench.stats import HEADER, ratio_row, row


def _machine() -> str:
    model = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:  # noqa: PTH123 - tiny read
            model = next(
                (line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), ""
            )
    except OSError:
        pass
    python = platform.python_version()
    return f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs {model}, Python {python}"


# What each comparison run switched off, for its note.
_SWITCHED_OFF = {"auth off": "authentication", "logging off": "request logging"}


def _notes(result: ScenarioResult) -> list[str]:
    gateway, notes = result.gateway, []
    if result.scenario.concurrency >= 100 and gateway.rss_peak_mb and gateway.rss_idle_mb is not None:
        per_stream = (gateway.rss_peak_mb - gateway.rss_idle_mb) * 1024 / result.scenario.concurrency
        notes.append(
            f"  RSS idle {gateway.rss_idle_mb:.1f} MB, peak {gateway.rss_peak_mb:.1f} MB: "
            f"{per_stream:.1f} KB per open stream"
        )
    if gateway.cpu_seconds is not None and gateway.all_events:
        notes.append(
            f"  gateway CPU {gateway.cpu_seconds:.2f} s for {gateway.all_events:,} events: "
            f"{gateway.cpu_us_per_event:.1f} us/event "
            f"({gateway.cpu_us_per_event / 1000:.4f} s per 1,000 events)"
        )
    for label, extra in result.extra.items():
        if not (extra.cpu_us_per_event and gateway.cpu_us_per_event):
            continue
        if label == "limits off":
            continue  # the baseline of "limits on", run right after it on the same warm gateway
        if label == "limits on":
            base = result.extra.get("limits off", gateway)
            if not base.cpu_us_per_event:
                continue
            cost = extra.cpu_us_per_event / base.cpu_us_per_event - 1
            rate = extra.requests_per_second / base.requests_per_second - 1 if base.requests_per_second else 0
            notes.append(
                f"  {label}: {extra.cpu_us_per_event:.1f} us/event (off: {base.cpu_us_per_event:.1f}); "
                f"every limit set adds {cost:+.1%} CPU, {rate:+.1%} req/s"
            )
            continue
        if label == "aiohttp client":
            cost = extra.cpu_us_per_event / gateway.cpu_us_per_event - 1
            notes.append(
                f"  {label}: {extra.cpu_us_per_event:.1f} us/event; {cost:+.1%} gateway CPU vs our client"
            )
            continue
        cost = gateway.cpu_us_per_event / extra.cpu_us_per_event - 1
        what = _SWITCHED_OFF.get(label, label)
        notes.append(
            f"  {label}: {extra.cpu_us_per_event:.1f} us/event (on: {gateway.cpu_us_per_event:.1f}); "
            f"{what} adds {cost:+.1%} CPU"
        )
    for label, failure in result.failures.items():
        notes.append(f"  {label}: the run did not complete ({failure})")
    for run in (result.direct, gateway, *result.extra.values()):
        if run.error_kinds:
            notes.append(f"  {run.label} errors: {run.error_kinds}")
    return notes


def _topology(round_trip_us: float | None) -> list[str]:
    if round_trip_us is None:
        return []
    return [
        f"cross-core round trip (gateway core <-> load core): {round_trip_us:.0f} us p50; a request "
        "through the gateway crosses cores twice, a direct one never"
    ]


def _net_overhead(result: ScenarioResult, round_trip_us: float | None) -> list[str]:
    direct, gateway = result.direct.ttft_p50_ms, result.gateway.ttft_p50_ms
    if round_trip_us is None or result.scenario.concurrency != 1 or not direct or not gateway:
        return []
    net = gateway - direct - 2 * round_trip_us / 1000
    return [f"  TTFT p50 overhead net of the two cross-core round trips: +{net:.2f} ms"]


def _repetition_rows(rep: Repetition, index: int | None) -> list[str]:
    """Every target's row of one round, then each one's ratios against that round's direct."""
    runs = [r for r in (rep.direct, rep.gateway, rep.features_off, rep.peer) if r is not None]
    if index is not None:
        for run in runs:
            run.label = f"{run.label} #{index}"
    lines = [row(run) for run in runs]
    for run in runs[1:]:
        lines.append(ratio_row(run, rep.direct, f"  {run.label.split(' (')[0].split(' #')[0]} / direct"))
    return lines


def render(results: list[ScenarioResult], round_trip_us: float | None = None) -> str:
    lines = [f"ccsite benchmark on {_machine()}", *_topology(round_trip_us), ""]
    for result in results:
        lines.append(f"[{result.scenario.name}] {result.scenario.title}")
        lines.append(HEADER)
        reps = result.repetitions or [Repetition(result.direct, result.gateway)]
        for index, rep in enumerate(reps, 1):
            lines.extend(_repetition_rows(rep, index if len(reps) > 1 else None))
        lines.extend(row(extra) for extra in result.extra.values())
        lines.extend(_notes(result))
        lines.extend(_net_overhead(result, round_trip_us))
        lines.append("")
    lines.extend(render_comparison(results))
    return "\n".join(lines) + "\n"
