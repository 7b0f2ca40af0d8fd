"""Measure the usage report at scale: fill a database with synthetic request-log rows (written
the way the request-log writer writes them: rows and their hourly roll-up in one transaction),
then time the report page (the admin view, rendered) and its CSV for several ranges.

Run it on a throwaway database, e.g.
``CCSITE_DATA_DIR=/tmp/ccsite-scale DEBUG=1 python manage.py migrate`` and then
``CCSITE_DATA_DIR=/tmp/ccsite-scale DEBUG=1 python manage.py usage_report_timing --rows 1000000``.

Profiles of the synthetic traffic:

- ``team`` (default): 20 users with one or two client keys each; each key is one client tool
  (one surface) that mostly asks for one model (a second one a fifth of the time); requests
  are routed over 3 credentials; 92% are served, the rest fail in a few ways. This is how a
  team's coding agents use the gateway: many requests per user, key and model every hour.
- ``uniform``: every request draws its user, model (12), surface, credential and outcome at
  random: the worst case for a roll-up, as almost no two requests in an hour share a grain.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.contrib import admin
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.test import RequestFactory

from accounts.models import User
from usage import rollups, views
from usage.forms import ReportForm
from usage.histogram import fine_bucket
from usage.models import RequestLog, UsageHour, UsageHourSummary
from usage.recorder import insert_rows
from usage.selectors import default_range
from usage.selectors import rollups as rollup_rows

MODELS = [f"vendor/model-{n}" for n in range(12)]
SURFACES = ["openai-chat", "anthropic-messages", "responses"]
FAILURES = [
    ("error", 502, "retryable"),
    ("error", 429, "rate_limited"),
    ("invalid", 400, "invalid_json"),
    ("cancelled", 499, ""),
    ("limited", 429, "tokens_per_minute"),
]
CREDENTIALS = [1, 2, 3]  # ids only: log rows carry no foreign-key constraint
BATCH = 20_000

# user, key, credential, surface, model, outcome, HTTP status, error code
Grain = tuple[int, int, int, str, str, str, int, str]


class Command(BaseCommand):
    help = "Fill synthetic request-log rows (--rows) over --days, then time the report page and its CSV."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--rows", type=int, default=0, help="rows to add first (0: time what is there)")
        parser.add_argument("--days", type=int, default=30, help="spread the added rows over this many days")
        parser.add_argument("--profile", choices=["team", "uniform"], default="team")
        parser.add_argument("--repeat", type=int, default=3, help="timed runs of each page")

    def handle(self, *args: object, rows: int, days: int, profile: str, repeat: int, **options: Any) -> None:
        if rows:
            self._fill(rows, days, profile)
        total = RequestLog.objects.count()
        if not total:
            raise CommandError("no request-log rows: pass --rows N")
        self.stdout.write(f"{total:,} request-log rows, {UsageHour.objects.count():,} hourly roll-up rows")
        staff = User.objects.filter(is_staff=True, is_active=True).first() or User.objects.create(
            username="usage-timing", is_staff=True, is_superuser=True
        )
        since, until = default_range()
        week = {"since": since.date().isoformat(), "until": (until - timedelta(days=1)).date().isoformat()}
        month = {**week, "since": (until - timedelta(days=30)).date().isoformat()}
        for label, query in [
            ("last 7 days by day (the default page)", {}),
            ("last 7 days by hour", {**week, "bucket": "hour"}),
            ("last 30 days by day", month),
            ("last 7 days, one model", {**week, "model": MODELS[0]}),
            ("last 7 days, one user", {**week, "user": str(_busiest_user())}),
        ]:
            page = self._best(repeat, lambda q=query: _render(views.report_view, staff, q))
            csv = self._best(repeat, lambda q=query: _render(views.report_csv_view, staff, q))
            in_range = _rows_in_range(query)
            self.stdout.write(
                f"{label}: {in_range[0]:,} rows in range ({in_range[1]:,} UsageHour rows, "
                f"{in_range[2]:,} summary rows): "
                f"page {page * 1000:.0f} ms, CSV {csv * 1000:.0f} ms (best of {repeat})"
            )

    def _best(self, repeat: int, run: Callable[[], object]) -> float:
        timings = []
        for _ in range(repeat):
            started = time.perf_counter()
            run()
            timings.append(time.perf_counter() - started)
        return min(timings)

    def _fill(self, count: int, days: int, profile: str) -> None:
        rng = random.Random(11)
        users = [User.objects.get_or_create(username=f"scale{n}")[0].pk for n in range(20)]
        draw = _team(rng, users) if profile == "team" else _uniform(rng, users)
        end = datetime.now(UTC)
        span = days * 86400
        started = time.perf_counter()
        batch: list[dict[str, Any]] = []
        for n in range(count):
            batch.append(_row(rng, n, end - timedelta(seconds=rng.randrange(span)), draw()))
            if len(batch) == BATCH:
                _write(batch)
                batch = []
        if batch:
            _write(batch)
        self.stdout.write(f"added {count:,} rows ({profile}) in {time.perf_counter() - started:.0f} s")


def _busiest_user() -> int:
    user_id = UsageHour.objects.order_by("-requests").values_list("user_id", flat=True).first()
    return user_id or 0


def _render(view: Callable[..., Any], staff: User, query: dict[str, str]) -> Any:
    request = RequestFactory().get("/admin/usage/requestlog/report/", query)
    request.user = staff
    response = view(admin.site, request)
    return response.render() if hasattr(response, "render") else response


def _rows_in_range(query: dict[str, str]) -> tuple[int, int, int]:
    """(request-log rows, UsageHour rows, UsageHourSummary rows read) for the page's filter."""
    report_filter, _ = ReportForm(query or None).report_filter()
    rows = RequestLog.objects.filter(hour__gte=report_filter.since_hour, hour__lt=report_filter.until_hour)
    if report_filter.model:
        rows = rows.filter(model=report_filter.model)
    if report_filter.user_id is not None:
        rows = rows.filter(user_id=report_filter.user_id)
    summary = rollup_rows(report_filter)
    summaries = summary.count() if summary.model is UsageHourSummary else 0
    return rows.count(), rollup_rows(report_filter, detailed=True).count(), summaries


def _write(batch: list[dict[str, Any]]) -> None:
    with transaction.atomic():  # the request-log writer's own insert and roll-up
        insert_rows(batch)
        rollups.add(batch)


def _failure(rng: random.Random) -> tuple[str, int, str]:
    return rng.choice(FAILURES) if rng.random() < 0.08 else ("ok", 200, "")


def _team(rng: random.Random, users: list[int]) -> Callable[[], Grain]:
    keys = []  # (user, key id, surface, main model, second model)
    for index, user in enumerate(users):
        for k in range(1 + index % 2):
            main, second = rng.sample(MODELS, 2)
            keys.append((user, 1000 + index * 2 + k, rng.choice(SURFACES), main, second))

    def draw() -> Grain:
        user, key, surface, main, second = rng.choice(keys)
        outcome, status, code = _failure(rng)
        model = second if rng.random() < 0.2 else main
        return (user, key, rng.choice(CREDENTIALS), surface, model, outcome, status, code)

    return draw


def _uniform(rng: random.Random, users: list[int]) -> Callable[[], Grain]:
    def draw() -> Grain:
        index = rng.randrange(len(users))
        outcome, status, code = rng.choice([("ok", 200, ""), *FAILURES])
        return (
            users[index],
            1000 + index * 2,
            rng.choice(CREDENTIALS),
            rng.choice(SURFACES),
            rng.choice(MODELS),
            outcome,
            status,
            code,
        )

    return draw


def _row(rng: random.Random, n: int, created: datetime, grain: Grain) -> dict[str, Any]:
    user, key, credential, surface, model, outcome, status, code = grain
    ttft = rng.lognormvariate(6, 0.8) if outcome == "ok" else None
    duration = rng.lognormvariate(8, 1)
    uncached, cache_read, cache_write = rng.randrange(1, 4000), rng.randrange(20000), rng.randrange(2000)
    return dict(
        created_at=created,
        hour=int(created.timestamp() // 3600),
        request_id=f"req_scale{n:010d}",
        user_id=user,
        client_key_id=key,
        credential_id=credential,
        surface=surface,
        client_model=model,
        model=model,
        stream=True,
        outcome=outcome,
        http_status=status,
        error_code=code,
        error_message="",
        first_token_ms=ttft,
        duration_ms=duration,
        ttft_bucket=None if ttft is None else fine_bucket(ttft),
        duration_bucket=fine_bucket(duration),
        failovers=0,
        input_tokens=uncached + cache_read + cache_write,
        uncached_input_tokens=uncached,
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
        output_tokens=rng.randrange(3000),
        reasoning_tokens=rng.randrange(500),
        tokens_estimated=outcome == "cancelled",
        cost_usd=Decimal(rng.randrange(1, 5_000_000)) / Decimal(100_000_000),
        user_agent="",
        session_id="",
    )
