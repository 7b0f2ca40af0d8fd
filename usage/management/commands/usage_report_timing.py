"""Measure the usage report at scale: fill a database with synthetic request-log rows, then time
the report page's queries (the same ``usage_report`` the page renders) for its default range.

Run it on a throwaway database, e.g.
``CCSITE_DATA_DIR=/tmp/ccsite-scale DEBUG=1 python manage.py migrate`` and then
``CCSITE_DATA_DIR=/tmp/ccsite-scale DEBUG=1 python manage.py usage_report_timing --rows 1000000``.
"""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from accounts.models import ClientKey, UpstreamCredential, User
from usage.histogram import fine_bucket
from usage.models import RequestLog
from usage.recorder import insert_rows
from usage.selectors import ReportFilter, default_range, usage_report

MODELS = [f"vendor/model-{n}" for n in range(12)]
OUTCOMES = ["ok"] * 8 + ["error", "invalid", "cancelled"]


class Command(BaseCommand):
    help = "Fill synthetic request-log rows (--rows) over --days, then time the report page's queries."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--rows", type=int, default=0, help="rows to add first (0: time what is there)")
        parser.add_argument("--days", type=int, default=30, help="spread the added rows over this many days")
        parser.add_argument("--repeat", type=int, default=3, help="timed runs of each report")

    def handle(self, *args: object, rows: int, days: int, repeat: int, **options: object) -> None:
        if rows:
            self._fill(rows, days)
        total = RequestLog.objects.count()
        if not total:
            raise CommandError("no request-log rows: pass --rows N")
        since, until = default_range()
        self.stdout.write(f"{total:,} request-log rows in the database")
        for label, report_filter, bucket in [
            ("last 7 days, by day", ReportFilter(since=since, until=until), "day"),
            ("last 7 days, by hour", ReportFilter(since=since, until=until), "hour"),
            ("last 30 days, by day", ReportFilter(since=until - timedelta(days=30), until=until), "day"),
            ("last 7 days, one model", ReportFilter(since=since, until=until, model=MODELS[0]), "day"),
        ]:
            timings = []
            for _ in range(repeat):
                started = time.perf_counter()
                report = usage_report(report_filter, bucket=bucket)
                timings.append(time.perf_counter() - started)
            self.stdout.write(
                f"{label}: {report.totals['requests']:,} rows in range, "
                f"best {min(timings) * 1000:.0f} ms, worst {max(timings) * 1000:.0f} ms"
            )

    def _fill(self, count: int, days: int) -> None:
        rng = random.Random(11)
        users = [User.objects.get_or_create(username=f"scale{n}")[0] for n in range(20)]
        keys = [ClientKey.objects.filter(user=user).first() for user in users]
        credentials = list(UpstreamCredential.objects.values_list("pk", flat=True)) or [None]
        end = datetime.now(UTC)
        span = days * 86400
        started = time.perf_counter()
        batch: list[dict[str, object]] = []
        for n in range(count):
            created = end - timedelta(seconds=rng.randrange(span))
            who = rng.randrange(len(users))
            outcome = rng.choice(OUTCOMES)
            ttft = rng.lognormvariate(6, 0.8) if outcome == "ok" else None
            duration = rng.lognormvariate(8, 1)
            uncached, cache_read, cache_write = (
                rng.randrange(1, 4000),
                rng.randrange(20000),
                rng.randrange(2000),
            )
            batch.append(
                dict(
                    created_at=created,
                    hour=int(created.timestamp() // 3600),
                    request_id=f"req_scale{n:010d}",
                    user_id=users[who].pk,
                    client_key_id=keys[who].pk if keys[who] else None,
                    credential_id=rng.choice(credentials),
                    surface=rng.choice(["openai-chat", "anthropic-messages"]),
                    client_model=rng.choice(MODELS),
                    model=rng.choice(MODELS),
                    stream=True,
                    outcome=outcome,
                    http_status=200,
                    first_token_ms=ttft,
                    duration_ms=duration,
                    ttft_bucket=None if ttft is None else fine_bucket(ttft),
                    duration_bucket=fine_bucket(duration),
                    input_tokens=uncached + cache_read + cache_write,
                    uncached_input_tokens=uncached,
                    cache_read_tokens=cache_read,
                    cache_write_tokens=cache_write,
                    output_tokens=rng.randrange(3000),
                    reasoning_tokens=rng.randrange(500),
                    cost_usd=Decimal(rng.randrange(1, 50_000)) / Decimal(1_000_000),
                    error_code="",
                    error_message="",
                    failovers=0,
                    tokens_estimated=False,
                    user_agent="",
                    session_id="",
                )
            )
            if len(batch) == 20_000:
                with transaction.atomic():
                    insert_rows(batch)  # the request-log writer's own insert
                batch = []
        if batch:
            with transaction.atomic():
                insert_rows(batch)
        self.stdout.write(f"added {count:,} rows in {time.perf_counter() - started:.0f} s")
