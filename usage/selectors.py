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


_GRAIN = ("b", "user_id", "model", "credential_id", "outcome", "error_code", "http_status")


def _grouped(f: ReportFilter, bucket: str) -> list[dict[str, Any]]:
    """The range's sums at the finest grain the page shows: one scan serves every table."""
    sums = _sums()
    sums.pop("errors")  # derived from the outcome in the grain
    query = logs(f).annotate(b=_bucket_expression(bucket)).values(*_GRAIN).annotate(**sums)
    return list(query.order_by())


def _add(into: dict[str, Any], row: dict[str, Any]) -> None:
    for name in (*TOKEN_FIELDS, "requests", "estimated"):
        into[name] = into.get(name, 0) + row[name]
    into["errors"] = into.get("errors", 0) + (row["requests"] if row["outcome"] != "ok" else 0)
    cost = row["cost_usd"]
    if cost is not None:
        into["cost_usd"] = (into.get("cost_usd") or Decimal(0)) + cost
    else:
        into.setdefault("cost_usd", None)


def _roll_up(rows: list[dict[str, Any]], key: Any) -> dict[Any, dict[str, Any]]:
    result: dict[Any, dict[str, Any]] = {}
    for row in rows:
        _add(result.setdefault(key(row), {}), row)
    return result


def _named_table(by: str, groups: dict[Any, dict[str, Any]], names: dict[Any, str]) -> Table:
    rows = []
    for ident, sums in groups.items():
        name = names.get(ident) or (str(ident) if ident not in (None, "") else "(none)")
        row = {**sums, "name": name, "id": ident}
        if by == "credential":
            row["cache_read_share"] = _share(row["cache_read_tokens"], row["input_tokens"])
        rows.append(row)
    rows.sort(key=lambda row: (-row["requests"], str(row["id"])))
    return _table_from(by, rows)


def _table_from(by: str, rows: list[dict[str, Any]]) -> Table:
    headers = [by, *BREAKDOWN_HEADERS]
    if by == "credential":
        headers.append("cache-read share")
    table = Table(f"By {by}", headers)
    for row in rows:
        cells = [row["name"], *_breakdown_cells(row)]
        if by == "credential":
            share = row["cache_read_share"]
            cells.append("" if share is None else f"{share:.1%}")
        table.rows.append(cells)
    return table


def _merged_latency(f: ReportFilter, bucket: str) -> tuple[dict[Any, Latency], Latency]:
    """Per-bucket percentiles and the range's, from one grouped count per measure."""
    per_bucket: dict[Any, Latency] = defaultdict(Latency)
    overall = Latency()
    for column, prefix in (("ttft_bucket", "ttft"), ("duration_bucket", "duration")):
        histograms = _histograms(f, column, bucket)
        merged: dict[int, int] = defaultdict(int)
        for key, histogram in histograms.items():
            setattr(per_bucket[key], f"{prefix}_p50", _percentile(histogram, 0.5))
            setattr(per_bucket[key], f"{prefix}_p95", _percentile(histogram, 0.95))
            for value, count in histogram:
                merged[value] += count
        setattr(overall, f"{prefix}_p50", _percentile(list(merged.items()), 0.5))
        setattr(overall, f"{prefix}_p95", _percentile(list(merged.items()), 0.95))
    return dict(per_bucket), overall


def _latency_cells(lat: Latency) -> list[str]:
    return [_ms(lat.ttft_p50), _ms(lat.ttft_p95), _ms(lat.duration_p50), _ms(lat.duration_p95)]


def usage_report(f: ReportFilter, *, bucket: str = "day") -> Report:
    """Everything the report page shows: three grouped queries over the range (sums at the
    page's finest grain, and one latency histogram per measure), rolled up here."""
    from accounts.models import UpstreamCredential, User

    grouped = _grouped(f, bucket)
    latencies, overall = _merged_latency(f, bucket)
    totals_row: dict[str, Any] = {"cost_usd": None}
    for row in grouped:
        _add(totals_row, row)
    for name in (*TOKEN_FIELDS, "requests", "errors", "estimated"):
        totals_row.setdefault(name, 0)
    by_bucket = _roll_up(grouped, lambda row: row["b"])
    series = [{"start": bucket_start(bucket, b), **by_bucket[b]} for b in sorted(by_bucket)]
    outcomes: dict[datetime, dict[str, int]] = defaultdict(dict)
    for (b, outcome), sums in _roll_up(grouped, lambda row: (row["b"], row["outcome"])).items():
        outcomes[bucket_start(bucket, b)][outcome] = sums["requests"]
    lat_headers = ["TTFT p50 ms", "TTFT p95 ms", "duration p50 ms", "duration p95 ms"]
    over_time = Table(f"By {bucket}", [bucket, *BREAKDOWN_HEADERS, *lat_headers])
    for row in series:
        label = row["start"].strftime("%Y-%m-%d %H:00" if bucket == "hour" else "%Y-%m-%d")
        lat = latencies.get(row["start"], Latency())
        over_time.rows.append([label, *_breakdown_cells(row), *_latency_cells(lat)])
    summary = Table(
        "Totals",
        [*BREAKDOWN_HEADERS, *lat_headers],
        [[*_breakdown_cells(totals_row), *_latency_cells(overall)]],
    )
    errors = Table("Errors", ["outcome", "error code", "HTTP status", "requests"])
    failed = [row for row in grouped if row["outcome"] != "ok"]
    error_groups = _roll_up(failed, lambda row: (row["outcome"], row["error_code"], row["http_status"]))
    errors.rows = [
        [outcome, code, status, sums["requests"]]
        for (outcome, code, status), sums in sorted(
            error_groups.items(), key=lambda item: (-item[1]["requests"], item[0][0], item[0][1])
        )
    ]
    by_user = _roll_up(grouped, lambda row: row["user_id"])
    by_model = _roll_up(grouped, lambda row: row["model"])
    by_credential = _roll_up(grouped, lambda row: row["credential_id"])
    user_names = dict(User.objects.filter(pk__in=[k for k in by_user if k]).values_list("pk", "username"))
    labels = dict(
        UpstreamCredential.objects.filter(pk__in=[k for k in by_credential if k]).values_list("pk", "label")
    )
    tables = [
        summary,
        over_time,
        errors,
        _named_table("user", by_user, user_names),
        _named_table("model", by_model, {}),
        _named_table("credential", by_credential, labels),
    ]
    return Report(f, bucket, totals_row, series, dict(outcomes), latencies, tables)
