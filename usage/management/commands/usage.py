"""`manage.py usage`: the report's numbers on the command line."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime, time, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from usage.forms import DAY_RANGE_MESSAGE, check_day
from usage.selectors import TOKEN_FIELDS, ReportFilter, breakdown, default_range

COLUMNS = ["name", "requests", "errors", *TOKEN_FIELDS, "estimated", "cost_usd"]


def _date(value: str) -> datetime:
    try:
        day = datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        raise CommandError(f"not a date (YYYY-MM-DD): {value!r}") from None
    try:
        check_day(day)
    except ValidationError:
        raise CommandError(f"{value}: {DAY_RANGE_MESSAGE}") from None
    return datetime.combine(day, time.min, tzinfo=UTC)


class Command(BaseCommand):
    help = "Usage per user, model, key, credential or day, as a table, CSV or JSON."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--since", help="first day, YYYY-MM-DD (default: 6 days ago)")
        parser.add_argument("--until", help="last day, inclusive, YYYY-MM-DD (default: today)")
        parser.add_argument("--by", choices=["user", "model", "key", "credential", "day"], default="day")
        parser.add_argument("--format", choices=["table", "csv", "json"], default="table")

    def handle(self, *args: object, **options: Any) -> None:
        since, until = default_range()
        if options["since"]:
            since = _date(options["since"])
        if options["until"]:
            until = _date(options["until"]) + timedelta(days=1)
        rows = breakdown(ReportFilter(since=since, until=until), options["by"])
        records = [{column: _plain(row.get(column)) for column in COLUMNS} for row in rows]
        if options["format"] == "json":
            self.stdout.write(json.dumps(records, indent=2))
        elif options["format"] == "csv":
            writer = csv.DictWriter(self.stdout, fieldnames=COLUMNS, lineterminator="\n")
            writer.writeheader()
            writer.writerows(records)
        else:
            self._table(records, options["by"])

    def _table(self, records: list[dict[str, Any]], by: str) -> None:
        headers = [by if column == "name" else column.removesuffix("_tokens") for column in COLUMNS]
        cells = [[str(record[column]) for column in COLUMNS] for record in records]
        widths = [max([len(h), *(len(row[i]) for row in cells)]) for i, h in enumerate(headers)]
        self.stdout.write("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
        for row in cells:
            self.stdout.write(
                "  ".join(
                    c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
                )
            )
        if not records:
            self.stdout.write("(no requests in this range)")


def _plain(value: Any) -> Any:
    if value is None:
        return ""
    if not isinstance(value, int | float | str):
        return str(value)  # Decimal cost
    return value
