"""Report, CLI and CSV numbers (read from the hourly roll-up) equal sums computed directly
from the rows; latency percentiles lie within the roll-up histogram's stated precision."""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections import defaultdict
from datetime import timedelta
from decimal import Decimal
from html.parser import HTMLParser

import pytest
from django.core.management import CommandError, call_command
from django.utils.html import escape

from tests.factories import UserFactory, make_client_key, make_credential
from tests.usage.factories import make_rows, store, utc
from usage import histogram
from usage.models import RequestLog, UsageHour, UsageHourSummary
from usage.selectors import ReportFilter, breakdown, latency, totals, usage_over_time, usage_report

START = utc(2026, 3, 1)
TOKENS = (
    "input_tokens",
    "uncached_input_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "output_tokens",
    "reasoning_tokens",
)


@pytest.fixture
def rows(db):
    keys = [make_client_key(user=UserFactory())[0] for _ in range(3)]
    credentials = [
        make_credential(label="c1").pk,
        make_credential(label="c2", api_key="user_other_1234").pk,
        None,
    ]
    made = make_rows(
        600,
        users=[k.user_id for k in keys],
        keys=[k.pk for k in keys],
        credentials=credentials,
        start=START,
        hours=24 * 5,
    )
    # Outside the range, before and after: never counted.
    outside = make_rows(
        20,
        users=[keys[0].user_id],
        keys=[keys[0].pk],
        credentials=[None],
        start=START - timedelta(days=3),
        hours=24,
        seed=9,
    )
    after = make_rows(
        20,
        users=[keys[1].user_id],
        keys=[keys[1].pk],
        credentials=[None],
        start=START + timedelta(days=5),
        hours=24,
        seed=10,
    )
    store([*made, *outside, *after])
    return made


RANGE = ReportFilter(since=START, until=START + timedelta(days=5))


def direct(chosen: list[RequestLog]) -> dict:
    """What a report must show for these rows, summed here in Python."""
    costs = [r.cost_usd for r in chosen if r.cost_usd is not None]
    return {
        "requests": len(chosen),
        "errors": sum(r.outcome != "ok" for r in chosen),
        "estimated": sum(r.tokens_estimated for r in chosen),
        **{name: sum(getattr(r, name) for r in chosen) for name in TOKENS},
        "cost_usd": sum(costs, Decimal(0)) if costs else None,
    }


def test_totals_equal_the_rows(rows):
    assert totals(RANGE) == direct(rows)
    assert any(r.cost_usd is None for r in rows) and any(r.user_id is None for r in rows)


def test_no_rows_no_numbers(db):
    assert totals(RANGE) == {
        "requests": 0,
        "errors": 0,
        "estimated": 0,
        **dict.fromkeys(TOKENS, 0),
        "cost_usd": None,
    }
    report = usage_report(RANGE)
    assert report.series == [] and report.tables[0].rows[0][0] == 0


def bucket_of(r: RequestLog, bucket: str):
    start = r.created_at.replace(minute=0, second=0, microsecond=0)
    return start.replace(hour=0) if bucket == "day" else start


@pytest.mark.parametrize("bucket", ["hour", "day"])
def test_series_equal_the_rows(rows, bucket):
    expected = defaultdict(list)
    for r in rows:
        expected[bucket_of(r, bucket)].append(r)
    got = {row.pop("start"): row for row in usage_over_time(RANGE, bucket=bucket)}
    assert got == {start: direct(chosen) for start, chosen in expected.items()}


COLUMNS = {
    "user": "user_id",
    "model": "model",
    "key": "client_key_id",
    "credential": "credential_id",
    "surface": "surface",
}


@pytest.mark.parametrize("by", list(COLUMNS))
def test_breakdowns_equal_the_rows(rows, by):
    expected = defaultdict(list)
    for r in rows:
        expected[getattr(r, COLUMNS[by])].append(r)
    got = {}
    for row in breakdown(RANGE, by):
        ident, share = row.pop("id"), row.pop("cache_read_share", None)
        name = row.pop("name")
        got[ident] = row
        if by == "credential":
            assert share == round(row["cache_read_tokens"] / row["input_tokens"], 4)
        assert name == ("(none)" if ident is None else name)
    assert got == {ident: direct(chosen) for ident, chosen in expected.items()}


def within_precision(got: float | None, values: list[float], fraction: float) -> bool:
    """The histogram's promise: (got + 1) / (exact + 1) within 2**(+-1/8), got rounded to 0.1."""
    ordered = sorted(values)
    if not ordered:
        return got is None
    exact = ordered[max(1, math.ceil(len(ordered) * fraction)) - 1]
    assert got is not None
    low, high = (exact + 1) / histogram.PRECISION - 1, (exact + 1) * histogram.PRECISION - 1
    return low - 0.05 <= got <= high + 0.05


def assert_latency_of(result, chosen: list[RequestLog]) -> None:
    ttfts = [r.first_token_ms for r in chosen if r.first_token_ms is not None]
    durations = [r.duration_ms for r in chosen]
    assert within_precision(result.ttft_p50, ttfts, 0.5), (result, sorted(ttfts))
    assert within_precision(result.ttft_p95, ttfts, 0.95)
    assert within_precision(result.duration_p50, durations, 0.5)
    assert within_precision(result.duration_p95, durations, 0.95)


def test_latency_percentiles_within_the_histograms_precision(rows):
    assert_latency_of(latency(RANGE)[None], rows)
    per_day = latency(RANGE, bucket="day")
    for start, result in per_day.items():
        assert_latency_of(result, [r for r in rows if bucket_of(r, "day") == start])


def test_the_histogram_precision_is_what_the_docs_say():
    assert f"{(histogram.PRECISION - 1) * 100:.1f}%" == "9.1%"
    for ms in (0.0, 0.05, 0.4, 1, 5.5, 120, 999.9, 60_000, 1_000_000):
        index = histogram.coarse_bucket(histogram.fine_bucket(ms))
        reported = histogram.reported_ms(index)
        assert 1 / histogram.PRECISION - 1e-9 <= (reported + 1) / (ms + 1) <= histogram.PRECISION + 1e-9, ms
        assert ms <= histogram.fine_upper_ms(histogram.fine_bucket(ms)) <= ms * 1.05 + 0.05
    assert histogram.coarse_bucket(histogram.fine_bucket(3_600_000)) == histogram.OVERFLOW


@pytest.mark.parametrize("bucket", ["hour", "day"])
def test_the_page_report_equals_the_rows(rows, bucket):
    report = usage_report(RANGE, bucket=bucket)
    assert report.totals == direct(rows)
    per_bucket = defaultdict(list)
    for r in rows:
        per_bucket[bucket_of(r, bucket)].append(r)
    assert [{k: v for k, v in row.items() if k != "start"} for row in report.series] == [
        direct(per_bucket[start]) for start in sorted(per_bucket)
    ]
    assert report.outcomes == {
        start: {kind: sum(r.outcome == kind for r in chosen) for kind in {r.outcome for r in chosen}}
        for start, chosen in per_bucket.items()
    }
    for start, chosen in per_bucket.items():
        assert_latency_of(report.latency[start], chosen)
    tables = {table.title: table for table in report.tables}
    for by in ("user", "model", "credential"):
        expected = defaultdict(list)
        for r in rows:
            expected[getattr(r, COLUMNS[by])].append(r)
        got = {cells[0]: cells[1:9] for cells in tables[f"By {by}"].rows}
        assert len(got) == len(expected)
        for chosen in expected.values():
            figures = direct(chosen)
            assert [
                figures["requests"],
                figures["errors"],
                figures["uncached_input_tokens"],
                figures["cache_read_tokens"],
                figures["cache_write_tokens"],
                figures["output_tokens"],
                figures["reasoning_tokens"],
                "" if figures["cost_usd"] is None else f"{figures['cost_usd']:.4f}",
            ] in got.values()
    errors = defaultdict(int)
    for r in rows:
        if r.outcome != "ok":
            errors[(r.outcome, r.error_code, r.http_status)] += 1
    assert {tuple(cells[:3]): cells[3] for cells in tables["Errors"].rows} == errors


FILTERS = [
    lambda r: {"user_id": r.user_id},
    lambda r: {"key_id": r.client_key_id},
    lambda r: {"model": r.model},
    lambda r: {"credential_id": r.credential_id},
    lambda r: {"surface": "anthropic-messages"},
    lambda r: {"user_id": r.user_id, "model": r.model, "surface": "openai-chat"},
    lambda r: {"key_id": r.client_key_id, "credential_id": r.credential_id, "model": r.model},
]
MATCHES = {
    "user_id": "user_id",
    "key_id": "client_key_id",
    "model": "model",
    "credential_id": "credential_id",
    "surface": "surface",
}


@pytest.mark.parametrize("make_filter", FILTERS)
def test_every_filter_narrows_every_number(rows, make_filter):
    chosen_filter = make_filter(next(r for r in rows if r.credential_id is not None))
    # A range that starts and ends inside a day: whole hours, not whole days.
    since, until = START + timedelta(hours=30, minutes=20), START + timedelta(days=3, hours=5, minutes=1)
    narrowed = ReportFilter(since=since, until=until, **chosen_filter)
    first_hour = since.replace(minute=0)
    last_hour_end = until.replace(minute=0) + timedelta(hours=1)
    chosen = [
        r
        for r in rows
        if first_hour <= r.created_at < last_hour_end
        and all(getattr(r, MATCHES[name]) == value for name, value in chosen_filter.items())
    ]
    assert chosen and len(chosen) < len(rows)
    assert totals(narrowed) == direct(chosen)
    report = usage_report(narrowed, bucket="hour")
    assert report.totals == direct(chosen)
    assert sum(row["requests"] for row in report.series) == len(chosen)
    assert_latency_of(latency(narrowed)[None], chosen)


def test_the_writer_and_a_rebuild_give_the_same_roll_up(rows):
    """The fixture's roll-ups came from a rebuild; adding the same rows again through the
    writer's incremental path (rollups.add, in slices as batches would come) doubles each sum."""
    from usage import rollups

    def contents(model, grain):
        return {tuple(row[name] for name in grain): row for row in model.objects.values()}

    before = [contents(model, grain) for model, grain in rollups.TABLES]
    as_dicts = list(RequestLog.objects.order_by("?").values(*rollups.ROW_FIELDS))
    for start in range(0, len(as_dicts), 97):
        rollups.add(as_dicts[start : start + 97])
    for (model, grain), earlier in zip(rollups.TABLES, before, strict=True):
        after = contents(model, grain)
        assert after.keys() == earlier.keys()
        for key, row in after.items():
            for name in rollups.MEASURES:
                assert row[name] == pytest.approx(2 * earlier[key][name]), (model, key, name)


def usage_cli(*args: str) -> str:
    """What ``manage.py usage`` prints for the first five days of March 2026 with ``args``."""
    out = io.StringIO()
    call_command("usage", "--since", "2026-03-01", "--until", "2026-03-05", *args, stdout=out)
    return out.getvalue()


def test_cli_equals_the_rows(rows):
    printed = usage_cli("--by", "model", "--format", "json")
    got = {record["name"]: (record["requests"], record["output_tokens"]) for record in json.loads(printed)}
    expected = defaultdict(lambda: (0, 0))
    for r in rows:
        n, o = expected[r.model]
        expected[r.model] = (n + 1, o + r.output_tokens)
    assert got == dict(expected)
    records = list(csv.DictReader(io.StringIO(usage_cli("--by", "day", "--format", "csv"))))
    assert sum(int(record["requests"]) for record in records) == len(rows)
    assert [record["name"] for record in records] == [f"2026-03-0{d}" for d in range(1, 6)]
    assert "requests" in usage_cli("--by", "user").splitlines()[0]


class TableParser(HTMLParser):
    """The report page's usage tables, as lists of rows of cell texts."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[tuple[str, list[list[str]]]] = []
        self._row: list[str] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table" and "usage-table" in (attrs.get("class") or ""):
            self.tables.append((attrs["data-title"], []))
        elif tag == "tr" and self.tables:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.tables[-1][1].append(self._row)
            self._row = None
        elif tag == "table":
            self._row = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def test_csv_matches_the_page(rows, admin_client):
    query = "?since=2026-03-01&until=2026-03-05&bucket=day"
    page = admin_client.get(f"/admin/usage/requestlog/report/{query}")
    assert page.status_code == 200
    parser = TableParser()
    parser.feed(page.content.decode())
    exported = admin_client.get(f"/admin/usage/requestlog/report.csv{query}")
    assert exported.status_code == 200 and exported["Content-Type"].startswith("text/csv")
    sections: list[tuple[str, list[list[str]]]] = []
    for record in csv.reader(io.StringIO(exported.content.decode())):
        if record and record[0].startswith("# "):
            sections.append((record[0][2:], []))
        elif record:
            sections[-1][1].append(record)
    assert sections == parser.tables
    assert [title for title, _ in sections] == [
        "Totals",
        "By day",
        "Errors",
        "By user",
        "By model",
        "By credential",
    ]
    assert sections[0][1][1][0] == str(len(rows))  # the totals row's request count


def test_report_page_is_staff_only(client, rows):
    response = client.get("/admin/usage/requestlog/report/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_request_log_admin_lists_and_searches_without_secrets(admin_client, rows, client_key):
    listing = admin_client.get("/admin/usage/requestlog/", {"q": rows[0].request_id})
    assert listing.status_code == 200 and rows[0].request_id.encode() in listing.content
    detail = admin_client.get(f"/admin/usage/requestlog/{rows[0].pk}/change/")
    assert detail.status_code == 200 and b"not kept" in detail.content
    assert client_key[1].encode() not in listing.content + detail.content
    by_user = admin_client.get(f"/admin/usage/requestlog/?user__id__exact={rows[0].user_id}")
    assert by_user.status_code == 200
    user_page = admin_client.get(f"/admin/accounts/user/{rows[0].user_id}/change/")
    assert f"user__id__exact={rows[0].user_id}".encode() in user_page.content
    key_page = admin_client.get(f"/admin/accounts/clientkey/{rows[0].client_key_id}/change/")
    assert f"client_key__id__exact={rows[0].client_key_id}".encode() in key_page.content


def test_prune_deletes_old_hours_with_their_roll_up(rows):
    from datetime import UTC, datetime

    from usage.models import RequestBody

    old = datetime(2000, 1, 1, 12, 30, tzinfo=UTC)
    moved = [r.pk for r in RequestLog.objects.filter(created_at__gte=START).order_by("pk")[:5]]
    RequestLog.objects.filter(pk__in=moved).update(created_at=old, hour=int(old.timestamp() // 3600))
    RequestBody.objects.create(request_id="req_old", created_at=old)
    call_command("rebuild_usage_rollups", stdout=io.StringIO())
    everything = ReportFilter(since=datetime(1999, 1, 1, tzinfo=UTC), until=START + timedelta(days=30))
    assert totals(everything)["requests"] == RequestLog.objects.count()
    before = RequestLog.objects.count()
    out = io.StringIO()
    call_command("prune_request_logs", "--older-than", "3650", "--batch-size", "2", stdout=out)
    assert RequestLog.objects.count() == before - 5
    assert "Deleted 5 request logs and 1 bodies" in out.getvalue()
    old_hours = int(START.timestamp() // 3600) - 24 * 3
    assert not UsageHour.objects.filter(hour__lt=old_hours).exists()
    assert not UsageHourSummary.objects.filter(hour__lt=old_hours).exists()
    remaining = list(RequestLog.objects.all())
    assert totals(everything) == direct(remaining)


def test_rebuild_command_restores_a_lost_roll_up(rows):
    expected = usage_report(RANGE, bucket="hour").tables
    UsageHour.objects.all().delete()
    UsageHourSummary.objects.all().delete()
    assert totals(RANGE)["requests"] == 0
    out = io.StringIO()
    call_command("rebuild_usage_rollups", "--since", "2026-02-26", "--until", "2026-03-06", stdout=out)
    assert "Rolled up 640 request-log rows" in out.getvalue()
    assert usage_report(RANGE, bucket="hour").tables == expected


@pytest.mark.django_db(transaction=True)
def test_the_migration_rolls_up_a_log_written_before_it():
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    executor.migrate([("usage", "0001_request_log")])
    try:
        key = make_client_key()[0]
        made = make_rows(50, users=[key.user_id], keys=[key.pk], credentials=[None], start=START, hours=30)
        RequestLog.objects.bulk_create(made)  # the log's table is the same before and after 0002
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
    assert totals(RANGE) == direct(made)
    assert usage_report(RANGE).totals == direct(made)


@pytest.mark.parametrize(
    ("query", "errors"),
    [
        ("since=2026-13-45", ["since: not a date (YYYY-MM-DD): '2026-13-45'"]),
        (
            "since=garbage&until=x",
            ["since: not a date (YYYY-MM-DD): 'garbage'", "until: not a date (YYYY-MM-DD): 'x'"],
        ),
        ("since=2026-03-05&until=2026-03-01", ["__all__: until is before since: the range is empty"]),
    ],
)
def test_a_bad_filter_is_a_400_with_the_message_never_silently_ignored(rows, admin_client, query, errors):
    page = admin_client.get(f"/admin/usage/requestlog/report/?{query}")
    assert page.status_code == 400
    html = page.content.decode()
    assert 'id="usage-filters"' in html and 'id="usage-filter-errors"' in html  # the form, to correct it
    for error in errors:
        assert escape(error) in html
    assert '<table class="usage-table"' not in html  # no numbers for a range nobody asked for
    exported = admin_client.get(f"/admin/usage/requestlog/report.csv?{query}")
    assert exported.status_code == 400 and exported.content.decode().splitlines() == errors
    # The CLI words a bad date the same way.
    with pytest.raises(CommandError, match=re.escape("not a date (YYYY-MM-DD): '2026-13-45'")):
        call_command("usage", "--since", "2026-13-45")
