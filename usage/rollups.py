"""The hourly roll-ups, kept equal to the sums of the request log's rows: ``UsageHour`` per
hour and everything a report filters or groups on, ``UsageHourSummary`` per hour and kind of
outcome (the unfiltered report).

- ``add(rows)``: the writer sums a batch in memory (one entry per hour and grain) and adds it
  with one ``INSERT ... ON CONFLICT (grain) DO UPDATE SET n = n + excluded.n`` per entry, in
  the transaction that inserts the rows (SQLite 3.24+ and PostgreSQL alike; Django's
  ``bulk_create(update_conflicts=...)`` can only overwrite, not add). Entries go in sorted
  order, so two processes adding to the same hours take row locks in the same order.
- ``rebuild(...)``: recomputes whole hours from the rows (``manage.py rebuild_usage_rollups``,
  and the migration that created the table), a day per transaction.
- ``delete_before(hour)``: pruning removes the hours it removes rows from (usage/retention.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from functools import cache
from typing import Any

from django.db import connection, transaction

from usage import histogram
from usage.models import (
    DURATION_COLUMNS,
    TTFT_COLUMNS,
    USAGE_HOUR_GRAIN,
    RequestLog,
    UsageHour,
    UsageHourSummary,
)

GRAIN = USAGE_HOUR_GRAIN
SUMMARY_GRAIN = ("hour", "outcome", "error_code", "http_status")
_SUMMARY_KEY = tuple(GRAIN.index(name) for name in SUMMARY_GRAIN)
TABLES = ((UsageHour, GRAIN), (UsageHourSummary, SUMMARY_GRAIN))
TOKEN_COLUMNS = (
    "input_tokens",
    "uncached_input_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "output_tokens",
    "reasoning_tokens",
)
_COUNTS = (
    "requests",
    "estimated",
    "priced",
    *TOKEN_COLUMNS,
    "cost_usd_e8",
    "failovers",
    "duration_ms_sum",
    "ttft_ms_sum",
)
MEASURES = (*_COUNTS, *TTFT_COLUMNS, *DURATION_COLUMNS)
# Positions in an entry's list of measures.
_REQUESTS, _ESTIMATED, _PRICED = 0, 1, 2
_TOKENS = 3
_COST, _FAILOVERS, _DURATION_SUM, _TTFT_SUM = 9, 10, 11, 12
_TTFT0 = len(_COUNTS)
_DURATION0 = _TTFT0 + histogram.BUCKETS
# The RequestLog fields a row must carry to be summed (build_row's keys, or .values()).
ROW_FIELDS = (
    *GRAIN,
    *TOKEN_COLUMNS,
    "tokens_estimated",
    "cost_usd",
    "failovers",
    "duration_ms",
    "first_token_ms",
    "ttft_bucket",
    "duration_bucket",
)
USD_E8 = Decimal(100_000_000)

Key = tuple[Any, ...]


def _empty() -> list[Any]:
    entry: list[Any] = [0] * len(MEASURES)
    entry[_DURATION_SUM] = entry[_TTFT_SUM] = 0.0
    return entry


def aggregate(rows: Iterable[dict[str, Any]]) -> dict[Key, list[Any]]:
    """The rows' sums per hour and grain (no user, key or credential is 0)."""
    entries: dict[Key, list[Any]] = {}
    for row in rows:
        key = (
            row["hour"],
            row["user_id"] or 0,
            row["client_key_id"] or 0,
            row["credential_id"] or 0,
            row["surface"],
            row["model"],
            row["outcome"],
            row["error_code"],
            row["http_status"],
        )
        entry = entries.get(key)
        if entry is None:
            entry = entries[key] = _empty()
        entry[_REQUESTS] += 1
        if row["tokens_estimated"]:
            entry[_ESTIMATED] += 1
        for offset, name in enumerate(TOKEN_COLUMNS):
            entry[_TOKENS + offset] += row[name]
        cost = row["cost_usd"]
        if cost is not None:
            entry[_PRICED] += 1
            entry[_COST] += int(cost * USD_E8)  # exact: costs carry 8 decimal places
        entry[_FAILOVERS] += row["failovers"]
        entry[_DURATION_SUM] += row["duration_ms"]
        entry[_DURATION0 + histogram.coarse_bucket(row["duration_bucket"])] += 1
        if row["ttft_bucket"] is not None:
            entry[_TTFT_SUM] += row["first_token_ms"]
            entry[_TTFT0 + histogram.coarse_bucket(row["ttft_bucket"])] += 1
    return entries


@cache
def _upsert_sql(table: str, grain: tuple[str, ...]) -> str:
    quote = connection.ops.quote_name
    table = quote(table)
    columns = [*grain, *MEASURES]
    additions = ", ".join(
        f"{quote(name)} = {table}.{quote(name)} + excluded.{quote(name)}" for name in MEASURES
    )
    return (
        f"INSERT INTO {table} ({', '.join(quote(name) for name in columns)}) "
        f"VALUES ({', '.join(['%s'] * len(columns))}) "
        f"ON CONFLICT ({', '.join(quote(name) for name in grain)}) DO UPDATE SET {additions}"
    )


def _summaries(entries: dict[Key, list[Any]]) -> dict[Key, list[Any]]:
    """The entries summed per hour and kind of outcome only (UsageHourSummary's grain)."""
    result: dict[Key, list[Any]] = {}
    for key, entry in entries.items():
        summary_key = tuple(key[index] for index in _SUMMARY_KEY)
        into = result.get(summary_key)
        if into is None:
            result[summary_key] = list(entry)
        else:
            for index, value in enumerate(entry):
                into[index] += value
    return result


def add(rows: Iterable[dict[str, Any]]) -> None:
    """Add the rows' sums to both roll-ups (call inside the transaction that inserts the rows)."""
    entries = aggregate(rows)
    if not entries:
        return
    with connection.cursor() as cursor:
        for (model, grain), table_entries in zip(TABLES, (entries, _summaries(entries)), strict=True):
            params = [(*key, *table_entries[key]) for key in sorted(table_entries)]
            cursor.executemany(_upsert_sql(model._meta.db_table, grain), params)


def _lock_against_writers() -> None:
    """PostgreSQL: writers' upserts wait until a rebuild of their hours has committed (SQLite
    has one writer at a time anyway)."""
    if connection.vendor == "postgresql":
        tables = ", ".join(connection.ops.quote_name(model._meta.db_table) for model, _ in TABLES)
        with connection.cursor() as cursor:
            cursor.execute(f"LOCK TABLE {tables} IN SHARE ROW EXCLUSIVE MODE")


def rebuild_hours(since_hour: int, until_hour: int) -> int:
    """Recompute the roll-up of hours ``[since_hour, until_hour)`` from the rows; returns the
    number of rows summed."""
    with transaction.atomic():
        _lock_against_writers()
        for model, _ in TABLES:
            model.objects.filter(hour__gte=since_hour, hour__lt=until_hour).delete()
        rows = (
            RequestLog.objects.filter(hour__gte=since_hour, hour__lt=until_hour)
            .order_by()
            .values(*ROW_FIELDS)
            .iterator(chunk_size=5000)
        )
        counted = 0

        def counting() -> Iterable[dict[str, Any]]:
            nonlocal counted
            for row in rows:
                counted += 1
                yield row

        add(counting())
    return counted


def rebuild(since_hour: int | None = None, until_hour: int | None = None) -> int:
    """Recompute the roll-up of hours ``[since_hour, until_hour)`` (default: all), one UTC day
    per transaction, visiting only the days that have rows or roll-ups; returns the number of
    rows summed."""
    days: set[int] = set()
    for model in (RequestLog, UsageHour):
        hours = model.objects.order_by().values_list("hour", flat=True).distinct()
        if since_hour is not None:
            hours = hours.filter(hour__gte=since_hour)
        if until_hour is not None:
            hours = hours.filter(hour__lt=until_hour)
        days.update(hour // 24 for hour in hours)
    counted = 0
    for day in sorted(days):
        start, end = day * 24, day * 24 + 24
        if since_hour is not None:
            start = max(start, since_hour)
        if until_hour is not None:
            end = min(end, until_hour)
        counted += rebuild_hours(start, end)
    return counted


def delete_before(hour: int, batch_size: int = 5000) -> int:
    """Delete both roll-ups of every hour before ``hour``, in batches; returns the count."""
    deleted = 0
    for model, _ in TABLES:
        while True:
            with transaction.atomic():
                ids = list(model.objects.filter(hour__lt=hour).values_list("pk", flat=True)[:batch_size])
                if not ids:
                    break
                model.objects.filter(pk__in=ids).delete()
            deleted += len(ids)
    return deleted
