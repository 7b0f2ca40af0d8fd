"""Report queries: totals, series over time, latency percentiles and breakdowns, all read from
the hourly roll-up (``UsageHour``, usage/rollups.py), never from the request log's rows.

Every query filters the roll-up on its hour column (hours since the epoch) and on the chosen
user, key, model, credential and surface, all columns of the roll-up's grain, and sums in the
database with one GROUP BY; day buckets sum hours (``hour / 24``, integer division on SQLite
and PostgreSQL alike). A range starts at the hour that contains ``since`` and ends with the
hour that contains ``until``. Counts, tokens and costs are exact sums of the rows; latency
percentiles come from the roll-up's fixed histograms, within usage/histogram.PRECISION.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import cache
from operator import itemgetter
from typing import Any

from django.db import connection
from django.db.models import F, IntegerField, Q, QuerySet, Sum
from django.db.models.expressions import ExpressionWrapper

from usage import histogram
from usage.models import DURATION_COLUMNS, TTFT_COLUMNS, UsageHour, UsageHourSummary

TOKEN_FIELDS = (
    "input_tokens",
    "uncached_input_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "output_tokens",
    "reasoning_tokens",
)
# Summed as they are; ``errors`` and ``cost_usd`` are derived from them (see _finish).
_ADDITIVE = ("requests", "errors", "estimated", "priced", "cost_usd_e8", *TOKEN_FIELDS)
BREAKDOWNS = {
    "user": "user_id",
    "key": "client_key_id",
    "model": "model",
    "credential": "credential_id",
    "surface": "surface",
}
_NO_ID = 0  # the roll-up's "no user / key / credential"
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


def _filtered(f: ReportFilter) -> bool:
    return any((f.user_id is not None, f.key_id is not None, f.model, f.credential_id is not None, f.surface))


def rollups(f: ReportFilter, *, detailed: bool = False) -> QuerySet[Any]:
    """The roll-up rows of the filter's hours: ``UsageHourSummary`` (a few rows an hour) when
    nothing but the range is chosen and no per-user, key, model or credential figure is
    wanted (``detailed``), ``UsageHour`` otherwise."""
    query = Q(hour__gte=f.since_hour, hour__lt=f.until_hour)
    if not detailed and not _filtered(f):
        return UsageHourSummary.objects.filter(query).order_by()
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
    return UsageHour.objects.filter(query).order_by()


_ALIAS = "t_"  # summed columns are named apart from the model's own fields


def _sums() -> dict[str, Any]:
    sums: dict[str, Any] = {_ALIAS + name: Sum(name, default=0) for name in _ADDITIVE if name != "errors"}
    sums[_ALIAS + "errors"] = Sum("requests", filter=~Q(outcome="ok"), default=0)
    return sums


def _histogram_sums() -> dict[str, Any]:
    return {_ALIAS + name: Sum(name, default=0) for name in (*TTFT_COLUMNS, *DURATION_COLUMNS)}


def _named(row: dict[str, Any]) -> dict[str, Any]:
    """A result row with the sums under the columns' own names, as ints (PostgreSQL's SUM of a
    bigint column is a numeric)."""
    return {name.removeprefix(_ALIAS): _int(value) for name, value in row.items()}


def _int(value: Any) -> Any:
    return int(value) if isinstance(value, Decimal) else value


def _finish(sums: dict[str, Any]) -> dict[str, Any]:
    """Report figures from summed roll-up columns: the cost in USD (None when no request in
    the sums had a price), the rest as summed."""
    result = {name: sums.get(name, 0) for name in _ADDITIVE if name not in ("priced", "cost_usd_e8")}
    result["cost_usd"] = Decimal(sums.get("cost_usd_e8", 0)).scaleb(-8) if sums.get("priced") else None
    return result


def _bucket_expression(bucket: str) -> Any:
    if bucket not in BUCKETS:
        raise ValueError(f"bucket must be one of {BUCKETS}")
    return ExpressionWrapper(F("hour") / (24 if bucket == "day" else 1), output_field=IntegerField())


def bucket_start(bucket: str, value: int) -> datetime:
    hours = value * (24 if bucket == "day" else 1)
    return datetime.fromtimestamp(hours * 3600, tz=UTC)


def _label(bucket: str, start: datetime) -> str:
    return start.strftime("%Y-%m-%d %H:00" if bucket == "hour" else "%Y-%m-%d")


def totals(f: ReportFilter) -> dict[str, Any]:
    """Requests, errors (every outcome but ``ok``), requests with estimated tokens, the token
    sums (TOKEN_FIELDS) and ``cost_usd`` (Decimal, or None when nothing was priced)."""
    return _finish(_named(rollups(f).aggregate(**_sums())))


def usage_over_time(f: ReportFilter, *, bucket: str = "day") -> list[dict[str, Any]]:
    """One dict per bucket that has requests: ``start`` and the sums of ``totals``."""
    rows = rollups(f).annotate(b=_bucket_expression(bucket)).values("b").annotate(**_sums()).order_by("b")
    return [{"start": bucket_start(bucket, row.pop("b")), **_finish(_named(row))} for row in rows]


@dataclass
class Latency:
    """Nearest-rank percentiles in ms, within usage/histogram.PRECISION; TTFT counts only the
    requests that produced output. None when no request counts."""

    ttft_p50: float | None = None
    ttft_p95: float | None = None
    duration_p50: float | None = None
    duration_p95: float | None = None

    @classmethod
    def of(cls, sums: dict[str, Any]) -> Latency:
        ttft = [sums[name] for name in TTFT_COLUMNS]
        duration = [sums[name] for name in DURATION_COLUMNS]
        return cls(
            histogram.percentile(ttft, 0.5),
            histogram.percentile(ttft, 0.95),
            histogram.percentile(duration, 0.5),
            histogram.percentile(duration, 0.95),
        )


def latency(f: ReportFilter, *, bucket: str | None = None) -> dict[Any, Latency]:
    """Percentiles per bucket start, or under the key None for the whole range."""
    if bucket is None:
        return {None: Latency.of(_named(rollups(f).aggregate(**_histogram_sums())))}
    rows = rollups(f).annotate(b=_bucket_expression(bucket)).values("b").annotate(**_histogram_sums())
    return {bucket_start(bucket, row["b"]): Latency.of(_named(row)) for row in rows}


def _names(by: str, ids: Iterable[Any]) -> dict[Any, str]:
    from accounts.models import ClientKey, UpstreamCredential, User

    wanted = [ident for ident in ids if ident not in (None, _NO_ID, "")]
    if by == "user":
        return dict(User.objects.filter(pk__in=wanted).values_list("pk", "username"))
    if by == "key":
        return dict(ClientKey.objects.filter(pk__in=wanted).values_list("pk", "name"))
    if by == "credential":
        return dict(UpstreamCredential.objects.filter(pk__in=wanted).values_list("pk", "label"))
    return {}


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _named_rows(by: str, groups: dict[Any, dict[str, Any]]) -> list[dict[str, Any]]:
    """Finished sums per group, busiest first, with ``name`` (what to show) and ``id`` (the
    user, key or credential id, None for none; the model or surface itself)."""
    names = _names(by, groups)
    rows = []
    for ident, sums in groups.items():
        ident = None if ident == _NO_ID and by in ("user", "key", "credential") else ident
        row = {
            **_finish(sums),
            "name": names.get(ident) or (str(ident) if ident not in (None, "") else "(none)"),
        }
        row["id"] = ident
        if by == "credential":
            row["cache_read_share"] = _share(row["cache_read_tokens"], row["input_tokens"])
        rows.append(row)
    rows.sort(key=lambda row: (-row["requests"], str(row["id"])))
    return rows


def _grouped(f: ReportFilter, by: str) -> dict[Any, dict[str, Any]]:
    column = BREAKDOWNS[by]
    rows = rollups(f, detailed=True).values(column).annotate(**_sums())
    return {row.pop(column): _named(row) for row in rows}


def breakdown(f: ReportFilter, by: str) -> list[dict[str, Any]]:
    """Sums per user, key, model, credential, surface, day or hour (``name`` is what to show)."""
    if by in BUCKETS:
        return [{"name": _label(by, row["start"]), **row} for row in usage_over_time(f, bucket=by)]
    return _named_rows(by, _grouped(f, by))


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
        labels = [_label(self.bucket, row["start"]) for row in self.series]
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


def _latency_cells(lat: Latency) -> list[str]:
    return [_ms(lat.ttft_p50), _ms(lat.ttft_p95), _ms(lat.duration_p50), _ms(lat.duration_p95)]


LATENCY_HEADERS = ["TTFT p50 ms", "TTFT p95 ms", "duration p50 ms", "duration p95 ms"]


def _roll_up(
    rows: list[dict[str, Any]], key: Callable[[dict[str, Any]], Any], names: Iterable[str]
) -> dict[Any, dict[str, Any]]:
    result: dict[Any, dict[str, Any]] = {}
    for row in rows:
        into = result.setdefault(key(row), {})
        for name in names:
            into[name] = into.get(name, 0) + row[name]
    return result


_OVER_TIME_GRAIN = ("outcome", "error_code", "http_status")
_OVER_TIME_SUMS = (*(name for name in _ADDITIVE if name != "errors"), *TTFT_COLUMNS, *DURATION_COLUMNS)


@cache
def _over_time_sql(table: str) -> str:
    """The page's widest query (about 170 sums), written once: compiling it through the ORM
    on every request cost more than running it."""
    quote = connection.ops.quote_name
    grain = ", ".join(quote(name) for name in _OVER_TIME_GRAIN)
    sums = ", ".join(f"SUM({quote(name)})" for name in _OVER_TIME_SUMS)
    return (
        f"SELECT {quote('hour')} / %s, {grain}, {sums} FROM {quote(table)} "
        f"WHERE {{where}} GROUP BY 1, {grain}"
    )


def _where(f: ReportFilter) -> tuple[str, list[Any]]:
    """The filter as SQL over the roll-up's columns (what ``rollups(f)`` selects)."""
    clauses, params = ["hour >= %s", "hour < %s"], [f.since_hour, f.until_hour]
    for column, value in (
        ("user_id", f.user_id),
        ("client_key_id", f.key_id),
        ("credential_id", f.credential_id),
        ("model", f.model or None),
        ("surface", f.surface or None),
    ):
        if value is not None:
            clauses.append(f"{connection.ops.quote_name(column)} = %s")
            params.append(value)
    return " AND ".join(clauses), params


def _over_time(f: ReportFilter, bucket: str) -> list[dict[str, Any]]:
    """Sums and latency histograms per bucket and kind of outcome: one query serves the
    totals, the series, the outcome chart, the errors table and every percentile."""
    if bucket not in BUCKETS:
        raise ValueError(f"bucket must be one of {BUCKETS}")
    where, params = _where(f)
    names = ("b", *_OVER_TIME_GRAIN, *_OVER_TIME_SUMS)
    with connection.cursor() as cursor:
        table = (UsageHour if _filtered(f) else UsageHourSummary)._meta.db_table
        cursor.execute(_over_time_sql(table).format(where=where), [24 if bucket == "day" else 1, *params])
        rows = [dict(zip(names, map(_int, values), strict=True)) for values in cursor.fetchall()]
    for row in rows:
        row["errors"] = row["requests"] if row["outcome"] != "ok" else 0
    return rows


def usage_report(f: ReportFilter, *, bucket: str = "day") -> Report:
    """Everything the report page (and its CSV) shows, from two grouped queries over the
    roll-ups: per bucket and kind of outcome (with the latency histograms; the summary table
    when nothing but the range is chosen), and per user, model and credential."""
    grouped = _over_time(f, bucket)
    histograms = (*TTFT_COLUMNS, *DURATION_COLUMNS)
    totals_sums = _roll_up(grouped, lambda row: None, (*_ADDITIVE, *histograms)).get(None)
    totals_sums = totals_sums or {name: 0 for name in (*_ADDITIVE, *histograms)}
    by_bucket = _roll_up(grouped, lambda row: row["b"], (*_ADDITIVE, *histograms))
    series = [{"start": bucket_start(bucket, b), **_finish(by_bucket[b])} for b in sorted(by_bucket)]
    latencies = {bucket_start(bucket, b): Latency.of(sums) for b, sums in by_bucket.items()}
    outcomes: dict[datetime, dict[str, int]] = defaultdict(dict)
    for (b, outcome), sums in _roll_up(grouped, lambda row: (row["b"], row["outcome"]), ["requests"]).items():
        outcomes[bucket_start(bucket, b)][outcome] = sums["requests"]
    over_time = Table(f"By {bucket}", [bucket, *BREAKDOWN_HEADERS, *LATENCY_HEADERS])
    for row in series:
        over_time.rows.append(
            [_label(bucket, row["start"]), *_breakdown_cells(row), *_latency_cells(latencies[row["start"]])]
        )
    report_totals = _finish(totals_sums)
    summary = Table(
        "Totals",
        [*BREAKDOWN_HEADERS, *LATENCY_HEADERS],
        [[*_breakdown_cells(report_totals), *_latency_cells(Latency.of(totals_sums))]],
    )
    failed = [row for row in grouped if row["outcome"] != "ok"]
    error_groups = _roll_up(
        failed, lambda row: (row["outcome"], row["error_code"], row["http_status"]), ["requests"]
    )
    errors = Table("Errors", ["outcome", "error code", "HTTP status", "requests"])
    errors.rows = [
        [outcome, code, status, sums["requests"]]
        for (outcome, code, status), sums in sorted(
            error_groups.items(), key=lambda item: (-item[1]["requests"], item[0][0], item[0][1], item[0][2])
        )
    ]
    tables = [summary, over_time, errors]
    detail = [
        _named(row)
        for row in rollups(f, detailed=True).values("user_id", "model", "credential_id").annotate(**_sums())
    ]
    for by in ("user", "model", "credential"):
        groups = _roll_up(detail, itemgetter(BREAKDOWNS[by]), _ADDITIVE)
        tables.append(_table_from(by, _named_rows(by, groups)))
    return Report(f, bucket, report_totals, series, dict(outcomes), latencies, tables)
