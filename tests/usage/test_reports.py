"""Report, CLI and CSV numbers equal sums computed directly from the rows."""

from __future__ import annotations

import csv
import io
import json
import math
from collections import defaultdict
from datetime import timedelta
from html.parser import HTMLParser

import pytest
from django.core.management import call_command

from tests.factories import UserFactory, make_client_key, make_credential
from tests.usage.factories import make_rows, utc
from usage.models import RequestLog
from usage.selectors import ReportFilter, breakdown, latency, totals, usage_over_time, usage_report

START = utc(2026, 3, 1)


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
    RequestLog.objects.bulk_create(made)
    # Outside the range: never counted.
    outside = make_rows(
        20,
        users=[keys[0].user_id],
        keys=[keys[0].pk],
        credentials=[None],
        start=START - timedelta(days=3),
        hours=24,
        seed=9,
    )
    RequestLog.objects.bulk_create(outside)
    return made


RANGE = ReportFilter(since=START, until=START + timedelta(days=5))


def test_totals_equal_the_rows(rows):
    result = totals(RANGE)
    assert result["requests"] == len(rows)
    assert result["errors"] == sum(r.outcome != "ok" for r in rows)
    for name in (
        "input_tokens",
        "uncached_input_tokens",
        "cache_read_tokens",
        "cache_write_tokens",
        "output_tokens",
        "reasoning_tokens",
    ):
        assert result[name] == sum(getattr(r, name) for r in rows), name
    assert result["cost_usd"] == sum(r.cost_usd for r in rows)


@pytest.mark.parametrize("bucket", ["hour", "day"])
def test_series_equal_the_rows(rows, bucket):
    expected = defaultdict(lambda: [0, 0])
    for r in rows:
        start = r.created_at.replace(minute=0, second=0, microsecond=0)
        if bucket == "day":
            start = start.replace(hour=0)
        expected[start][0] += 1
        expected[start][1] += r.output_tokens
    got = {
        row["start"]: [row["requests"], row["output_tokens"]] for row in usage_over_time(RANGE, bucket=bucket)
    }
    assert got == dict(expected)


@pytest.mark.parametrize("by", ["user", "model", "key", "credential"])
def test_breakdowns_equal_the_rows(rows, by):
    column = {"user": "user_id", "model": "model", "key": "client_key_id", "credential": "credential_id"}[by]
    expected = defaultdict(lambda: [0, 0, 0])
    for r in rows:
        entry = expected[getattr(r, column)]
        entry[0] += 1
        entry[1] += r.cache_read_tokens
        entry[2] += r.input_tokens
    got = {
        row["id"]: [row["requests"], row["cache_read_tokens"], row["input_tokens"]]
        for row in breakdown(RANGE, by)
    }
    assert got == dict(expected)
    if by == "credential":
        for row in breakdown(RANGE, by):
            assert row["cache_read_share"] == round(expected[row["id"]][1] / expected[row["id"]][2], 4)


@pytest.mark.parametrize("bucket", ["hour", "day"])
def test_the_page_report_rolls_up_to_the_same_numbers(rows, bucket):
    report = usage_report(RANGE, bucket=bucket)
    direct = totals(RANGE)
    assert {name: report.totals[name] for name in direct} == direct
    assert [(r["start"], r["requests"], r["output_tokens"]) for r in report.series] == [
        (r["start"], r["requests"], r["output_tokens"]) for r in usage_over_time(RANGE, bucket=bucket)
    ]
    tables = {table.title: table for table in report.tables}
    for by in ("user", "model", "credential"):
        expected = {row["name"]: (row["requests"], row["cache_read_tokens"]) for row in breakdown(RANGE, by)}
        assert {cells[0]: (cells[1], cells[4]) for cells in tables[f"By {by}"].rows} == expected
    exact = latency(RANGE)[None]
    assert report.tables[0].rows[0][-4:] == [
        f"{v:.1f}" for v in (exact.ttft_p50, exact.ttft_p95, exact.duration_p50, exact.duration_p95)
    ]
    errors = sum(cells[3] for cells in tables["Errors"].rows)
    assert errors == direct["errors"]


def test_filters_narrow_every_number(rows):
    user_id = rows[0].user_id
    model = rows[0].model
    narrowed = ReportFilter(
        since=RANGE.since, until=RANGE.until, user_id=user_id, model=model, surface="openai-chat"
    )
    chosen = [r for r in rows if r.user_id == user_id and r.model == model and r.surface == "openai-chat"]
    assert totals(narrowed)["requests"] == len(chosen)
    assert totals(narrowed)["output_tokens"] == sum(r.output_tokens for r in chosen)


def nearest_rank(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(len(ordered) * fraction)) - 1]


def test_latency_percentiles_within_a_bucket_of_the_exact_value(rows):
    result = latency(RANGE)[None]
    ttfts = [r.first_token_ms for r in rows if r.first_token_ms is not None]
    durations = [r.duration_ms for r in rows]
    for got, exact in [
        (result.ttft_p50, nearest_rank(ttfts, 0.5)),
        (result.ttft_p95, nearest_rank(ttfts, 0.95)),
        (result.duration_p50, nearest_rank(durations, 0.5)),
        (result.duration_p95, nearest_rank(durations, 0.95)),
    ]:
        assert exact <= got + 0.1 and got <= exact * 1.05 + 0.1


def test_cli_equals_the_rows(rows):
    out = io.StringIO()
    call_command(
        "usage",
        "--since",
        "2026-03-01",
        "--until",
        "2026-03-05",
        "--by",
        "model",
        "--format",
        "json",
        stdout=out,
    )
    got = {
        record["name"]: (record["requests"], record["output_tokens"]) for record in json.loads(out.getvalue())
    }
    expected = defaultdict(lambda: (0, 0))
    for r in rows:
        n, o = expected[r.model]
        expected[r.model] = (n + 1, o + r.output_tokens)
    assert got == dict(expected)
    out = io.StringIO()
    call_command(
        "usage",
        "--since",
        "2026-03-01",
        "--until",
        "2026-03-05",
        "--by",
        "day",
        "--format",
        "csv",
        stdout=out,
    )
    records = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert sum(int(record["requests"]) for record in records) == len(rows)
    assert [record["name"] for record in records] == [f"2026-03-0{d}" for d in range(1, 6)]
    out = io.StringIO()
    call_command("usage", "--since", "2026-03-01", "--until", "2026-03-05", "--by", "user", stdout=out)
    assert "requests" in out.getvalue().splitlines()[0]


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


def test_prune_deletes_only_older_rows(rows):
    from datetime import UTC, datetime

    RequestLog.objects.filter(pk__in=[r.pk for r in RequestLog.objects.all()[:5]]).update(
        created_at=datetime(2000, 1, 1, tzinfo=UTC)
    )
    before = RequestLog.objects.count()
    out = io.StringIO()
    call_command("prune_request_logs", "--older-than", "3650", "--batch-size", "2", stdout=out)
    assert RequestLog.objects.count() == before - 5
    assert "Deleted 5 request logs" in out.getvalue()
