"""Recompute the hourly usage roll-up (what reports read) from the request log's rows."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from usage import rollups


def _hour(value: str) -> int:
    try:
        day = datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise CommandError(f"not a date (YYYY-MM-DD): {value!r}") from None
    return int(day.timestamp() // 3600)


class Command(BaseCommand):
    help = (
        "Rebuild the hourly usage roll-up from the request log (all hours, or --since/--until days). "
        "Safe while the gateway runs: each day is rebuilt in one transaction that writers wait for."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--since", help="first day, YYYY-MM-DD (default: the oldest row)")
        parser.add_argument("--until", help="last day, inclusive, YYYY-MM-DD (default: the newest row)")

    def handle(self, *args: object, **options: Any) -> None:
        since = _hour(options["since"]) if options["since"] else None
        until = _hour(options["until"]) + 24 if options["until"] else None
        started = time.perf_counter()
        counted = rollups.rebuild(since, until)
        self.stdout.write(f"Rolled up {counted:,} request-log rows in {time.perf_counter() - started:.1f} s.")
