"""Report queries over ``RequestLog``: totals, series over time, latency percentiles, breakdowns.

Every query filters on the indexed ``hour`` column (hours since the epoch) plus the chosen
user, key, model, credential and surface, and aggregates in the database with one GROUP BY;
day buckets are ``hour / 24`` (integer division on SQLite and PostgreSQL alike). Percentiles
come from the rows' log-scale latency buckets (usage/recorder.latency_bucket, about 4.4% wide),
so they need one grouped count, not a sort of every row.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Count, F, IntegerField, Q, QuerySet, Sum
from django.db.models.expressions import ExpressionWrapper

from usage.models import RequestLog
from usage.recorder import bucket_upper_ms

TOKEN_FIELDS = (
    "input_tokens",
    "uncached_input_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "output_tokens",
    "reasoning_tokens",
)
BREAKDOWNS = {
    "user": ("user_id", "user__username"),
    "key": ("client_key_id", "client_key__name"),
    "model": ("model", None),
    "credential": ("credential_id", "credential__label"),
    "surface": ("surface", None),
}
BUCKETS = ("hour", "day")


@dataclass(frozen=True)
class ReportFilter:
    since: datetime
    until: datetime
    user_id: int | None = None
    key_id: int | None = None
    model: str = ""
    credential_id: int | None = None
    surface: str = ""

    @property
    def since_hour(self) -> int:
        return int(self.since.timestamp() // 3600)

    @property
    def until_hour(self) -> int:
        return int(-(-self.until.timestamp() // 3600))  # the hour that contains `until`, included


def default_range(days: int = 7) -> tuple[datetime, datetime]:
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=days - 1), today + timedelta(days=1)


def logs(f: ReportFilter) -> QuerySet[RequestLog]:
    query = Q(hour__gte=f.since_hour, hour__lt=f.until_hour)
    if f.user_id is not None:
        query &= Q(user_id=f.user_id)
    if f.key_id is not None:
        query &= Q(client_key_id=f.key_id)
    if f.model:
        query &= Q(model=f.model)
    if f.credential_id is not None:
        query &= Q(credential_id=f.credential_id)
    if f.surface:
        query &= Q(surface=f.surface)
    return RequestLog.objects.filter(query).order_by()


def _sums() -> dict[str, Any]:
    sums: dict[str, Any] = {name: Sum(name, default=0) for name in TOKEN_FIELDS}
    sums["requests"] = Count("id")
    sums["errors"] = Count("id", filter=~Q(outcome="ok"))
    sums["estimated"] = Count("id", filter=Q(tokens_estimated=True))
    sums["cost_usd"] = Sum("cost_usd")
    return sums


def _bucket_expression(bucket: str) -> Any:
    if bucket not in BUCKETS:
        raise ValueError(f"bucket must be one of {BUCKETS}")
    return ExpressionWrapper(F("hour") / (24 if bucket == "day" else 1), output_field=IntegerField())


def bucket_start(bucket: str, value: int) -> datetime:
    hours = value * (24 if bucket == "day" else 1)
    return datetime.fromtimestamp(hours * 3600, tz=UTC)


def totals(f: ReportFilter) -> dict[str, Any]:
    return logs(f).aggregate(**_sums())


def usage_over_time(f: ReportFilter, *, bucket: str = "day") -> list[dict[str, Any]]:
    """One dict per bucket that has rows: ``start`` and the sums of ``totals``."""
    rows = logs(f).annotate(b=_bucket_expression(bucket)).values("b").annotate(**_sums()).order_by("b")
    return [{"start": bucket_start(bucket, row.pop("b")), **row} for row in rows]


def outcomes_over_time(f: ReportFilter, *, bucket: str = "day") -> dict[datetime, dict[str, int]]:
    """Per bucket, the count of requests by outcome (errors by kind)."""
    rows = logs(f).annotate(b=_bucket_expression(bucket)).values("b", "outcome").annotate(n=Count("id"))
    result: dict[datetime, dict[str, int]] = defaultdict(dict)
    for row in rows:
        result[bucket_start(bucket, row["b"])][row["outcome"]] = row["n"]
    return dict(result)


def errors_by_code(f: ReportFilter) -> list[dict[str, Any]]:
    rows = (
        logs(f).exclude(outcome="ok").values("outcome", "error_code", "http_status").annotate(n=Count("id"))
    )
    return sorted(rows, key=lambda row: (-row["n"], row["outcome"], row["error_code"]))


def _percentile(histogram: list[tuple[int, int]], fraction: float) -> float | None:
    """The upper edge of the bucket holding the given fraction of the sorted values."""
    total = sum(count for _, count in histogram)
    if not total:
        return None
    rank = max(1, -(-total * fraction // 1))  # nearest-rank
    seen = 0
    for bucket, count in sorted(histogram):
        seen += count
        if seen >= rank:
            return round(bucket_upper_ms(bucket), 1)
    return None


@dataclass
class Latency:
    ttft_p50: float | None = None
    ttft_p95: float | None = None
    duration_p50: float | None = None
    duration_p95: float | None = None


def _histograms(f: ReportFilter, column: str, bucket: str | None) -> dict[Any, list[tuple[int, int]]]:
    query = logs(f).filter(**{f"{column}__isnull": False})
    if bucket is None:
        rows = query.values(column).annotate(n=Count("id"))
        return {None: [(row[column], row["n"]) for row in rows]}
    rows = query.annotate(b=_bucket_expression(bucket)).values("b", column).annotate(n=Count("id"))
    result: dict[Any, list[tuple[int, int]]] = defaultdict(list)
    for row in rows:
        result[bucket_start(bucket, row["b"])].append((row[column], row["n"]))
    return result


def latency(f: ReportFilter, *, bucket: str | None = None) -> dict[Any, Latency]:
    """TTFT and duration p50/p95 in ms, per bucket start (or under the key None for the range).
    TTFT counts only requests that produced output."""
    result: dict[Any, Latency] = defaultdict(Latency)
    for key, histogram in _histograms(f, "ttft_bucket", bucket).items():
        result[key].ttft_p50, result[key].ttft_p95 = _percentile(histogram, 0.5), _percentile(histogram, 0.95)
    for key, histogram in _histograms(f, "duration_bucket", bucket).items():
        result[key].duration_p50 = _percentile(histogram, 0.5)
        result[key].duration_p95 = _percentile(histogram, 0.95)
    return dict(result)


def breakdown(f: ReportFilter, by: str) -> list[dict[str, Any]]:
    """Sums per user, key, model, credential, surface or day (``name`` is what to show)."""
    if by in ("day", "hour"):
        return [
            {"name": row["start"].strftime("%Y-%m-%d %H:00" if by == "hour" else "%Y-%m-%d"), **row}
            for row in usage_over_time(f, bucket=by)
        ]
    column, label = BREAKDOWNS[by]
    fields = [column] + ([label] if label else [])
    rows = logs(f).values(*fields).annotate(**_sums()).order_by("-requests", column)
    result = []
    for row in rows:
        name = row.pop(label) if label else None
        ident = row.pop(column)
        row["name"] = name or (str(ident) if ident not in (None, "") else "(none)")
        row["id"] = ident
        if by == "credential":
            row["cache_read_share"] = _share(row["cache_read_tokens"], row["input_tokens"])
        result.append(row)
    return result


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def money(value: Decimal | None) -> str:
    return "" if value is None else f"{value:.4f}"


@dataclass
class Table:
    title: str
    headers: list[str]
    rows: list[list[Any]] = field(default_factory=list)


BREAKDOWN_HEADERS = [
    "requests",
    "errors",
    "uncached input",
    "cache read",
    "cache write",
    "output",
    "reasoning",
    "cost USD",
]


def _breakdown_cells(row: dict[str, Any]) -> list[Any]:
    return [
        row["requests"],
        row["errors"],
        row["uncached_input_tokens"],
        row["cache_read_tokens"],
        row["cache_write_tokens"],
        row["output_tokens"],
        row["reasoning_tokens"],
        money(row["cost_usd"]),
    ]


def breakdown_table(f: ReportFilter, by: str) -> Table:
    headers = [by, *BREAKDOWN_HEADERS]
    if by == "credential":
        headers.append("cache-read share")
    table = Table(f"By {by}", headers)
    for row in breakdown(f, by):
        cells = [row["name"], *_breakdown_cells(row)]
        if by == "credential":
            share = row["cache_read_share"]
            cells.append("" if share is None else f"{share:.1%}")
        table.rows.append(cells)
    return table


def _ms(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


@dataclass
class Report:
    """What the report page shows and its CSV exports: one source for both."""

    filter: ReportFilter
    bucket: str
    totals: dict[str, Any]
    series: list[dict[str, Any]]
    outcomes: dict[datetime, dict[str, int]]
    latency: dict[Any, Latency]
    tables: list[Table]

    def chart_data(self) -> dict[str, Any]:
        labels = [
            row["start"].strftime("%Y-%m-%d %H:00" if self.bucket == "hour" else "%Y-%m-%d")
            for row in self.series
        ]
        kinds = sorted({kind for counts in self.outcomes.values() for kind in counts})
        lat = [self.latency.get(row["start"], Latency()) for row in self.series]
        return {
            "labels": labels,
            "requests": [row["requests"] for row in self.series],
            "tokens": {name: [row[name] for row in self.series] for name in TOKEN_FIELDS[1:]},
            "outcomes": {
                kind: [self.outcomes.get(row["start"], {}).get(kind, 0) for row in self.series]
                for kind in kinds
            },
            "cost": [float(row["cost_usd"] or 0) for row in self.series],
            "ttft_p50": [x.ttft_p50 for x in lat],
            "ttft_p95": [x.ttft_p95 for x in lat],
            "duration_p50": [x.duration_p50 for x in lat],
            "duration_p95": [x.duration_p95 for x in lat],
        }


def usage_report(f: ReportFilter, *, bucket: str = "day") -> Report:
    series = usage_over_time(f, bucket=bucket)
    latencies = latency(f, bucket=bucket)
    overall = latency(f).get(None, Latency())
    over_time = Table(
        f"By {bucket}",
        [bucket, *BREAKDOWN_HEADERS, "TTFT p50 ms", "TTFT p95 ms", "duration p50 ms", "duration p95 ms"],
    )
    for row in series:
        lat = latencies.get(row["start"], Latency())
        label = row["start"].strftime("%Y-%m-%d %H:00" if bucket == "hour" else "%Y-%m-%d")
        over_time.rows.append(
            [
                label,
                *_breakdown_cells(row),
                _ms(lat.ttft_p50),
                _ms(lat.ttft_p95),
                _ms(lat.duration_p50),
                _ms(lat.duration_p95),
            ]
        )
    totals_row = totals(f)
    summary = Table(
        "Totals",
        [*BREAKDOWN_HEADERS, "TTFT p50 ms", "TTFT p95 ms", "duration p50 ms", "duration p95 ms"],
        [
            [
                *_breakdown_cells(totals_row),
                _ms(overall.ttft_p50),
                _ms(overall.ttft_p95),
                _ms(overall.duration_p50),
                _ms(overall.duration_p95),
            ]
        ],
    )
    errors = Table("Errors", ["outcome", "error code", "HTTP status", "requests"])
    errors.rows = [
        [row["outcome"], row["error_code"], row["http_status"], row["n"]] for row in errors_by_code(f)
    ]
    tables = [summary, over_time, errors] + [breakdown_table(f, by) for by in ("user", "model", "credential")]
    return Report(f, bucket, totals_row, series, outcomes_over_time(f, bucket=bucket), latencies, tables)
