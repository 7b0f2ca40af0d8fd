"""The gateway against a peer proxy, column by column, from the same run's interleaved rounds.

Each column is a ratio of the gateway's figure to the peer's taken within one repetition (so
both saw the same machine load), and the median of the repetitions is reported. Costs (TTFT
overhead, CPU, first-token p99, RSS) lead when the ratio is <= 0.9, throughput when >= 1.1.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass

from proxy.bench.runner import Repetition, ScenarioResult
from proxy.bench.stats import RunFigures

LEAD_COST, LEAD_THROUGHPUT = 0.9, 1.1


@dataclass(frozen=True, slots=True)
class Column:
    key: str  # scenario name
    title: str
    unit: str
    value: Callable[[RunFigures, RunFigures], float | None]  # (target, direct) -> figure
    higher_is_better: bool = False


def _overhead_ms(run: RunFigures, direct: RunFigures) -> float | None:
    return run.ttft_p50_ms - direct.ttft_p50_ms


def _cpu_us_per_event(run: RunFigures, direct: RunFigures) -> float | None:
    # Per upstream event (the direct run's events per request): the same work for both targets,
    # whatever number of SSE events each one writes for it.
    if run.cpu_ms_per_request is None or not direct.ok:
        return None
    return run.cpu_ms_per_request * 1000 / (direct.events / direct.ok)


COLUMNS = (
    Column("a", "a: c=1 first-token overhead over direct", "ms", _overhead_ms),
    Column("b", "b: CPU per relayed event, /v1/chat/completions", "us", _cpu_us_per_event),
    Column("e", "e: CPU per relayed event, /v1/messages", "us", _cpu_us_per_event),
    Column("d", "d: small non-streaming requests/s", "req/s", lambda r, _: r.requests_per_second, True),
    Column("d", "d: CPU per small non-streaming request", "ms", lambda r, _: r.cpu_ms_per_request),
    Column("c", "c: slow streams, first-token p99", "ms", lambda r, _: r.ttft_p99_ms),
    Column("c", "c: slow streams, RSS peak", "MB", lambda r, _: r.rss_peak_mb),
)


@dataclass(frozen=True, slots=True)
class ColumnFigures:
    column: Column
    gateway: float  # medians over the repetitions
    peer: float
    ratio: float  # median of the per-repetition ratios
    ratios: tuple[float, ...]

    @property
    def leads(self) -> bool:
        if self.column.higher_is_better:
            return self.ratio >= LEAD_THROUGHPUT
        return self.ratio <= LEAD_COST


def _matches(column: Column, result: ScenarioResult) -> bool:
    name = result.scenario.name
    if column.key == "c":  # the steady slow-stream run, not the burst
        return name.startswith("c") and not name.endswith("-burst")
    return name == column.key


def _pairs(column: Column, reps: list[Repetition], target: str) -> list[tuple[float, float]]:
    pairs = []
    for rep in reps:
        run = getattr(rep, target)
        if rep.peer is None or run is None or rep.peer.errors or run.errors:
            continue
        ours, theirs = column.value(run, rep.direct), column.value(rep.peer, rep.direct)
        if ours is not None and theirs:
            pairs.append((ours, theirs))
    return pairs


def compare(results: list[ScenarioResult], target: str = "gateway") -> list[ColumnFigures]:
    """Each column's gateway/peer figures; ``target`` "features_off" compares the gateway
    with its features off instead (``--features-off``)."""
    table = []
    for column in COLUMNS:
        result = next((r for r in results if _matches(column, r)), None)
        if result is None:
            continue
        pairs = _pairs(column, result.repetitions, target)
        if not pairs:
            continue
        ratios = tuple(ours / theirs for ours, theirs in pairs)
        table.append(
            ColumnFigures(
                column,
                statistics.median(ours for ours, _ in pairs),
                statistics.median(theirs for _, theirs in pairs),
                statistics.median(ratios),
                ratios,
            )
        )
    return table


def render_comparison(results: list[ScenarioResult]) -> list[str]:
    lines = _comparison(results, "gateway", "features on")
    return lines + _comparison(results, "features_off", "features off") if lines else []


def _comparison(results: list[ScenarioResult], target: str, label: str) -> list[str]:
    table = compare(results, target)
    if not table:
        return []
    reps = max(len(r.repetitions) for r in results)
    lines = [
        f"gateway ({label}) / peer, median of {reps} interleaved repetition(s) "
        f"(lead: <= {LEAD_COST} on costs, >= {LEAD_THROUGHPUT} on throughput)",
        f"{'column':<50} {'gateway':>10} {'peer':>10} {'ratio':>7}  per repetition",
    ]
    for row in table:
        each = ", ".join(f"{ratio:.2f}" for ratio in row.ratios)
        mark = "lead" if row.leads else "BEHIND"
        lines.append(
            f"{row.column.title + ' (' + row.column.unit + ')':<50} {row.gateway:>10,.2f} "
            f"{row.peer:>10,.2f} {row.ratio:>6.2f}x  {each}  {mark}"
        )
    return [*lines, ""]
