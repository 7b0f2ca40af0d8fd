"""Delete request logs (and kept bodies) older than N days, in batches."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.utils import timezone

from usage.retention import prune_request_logs


class Command(BaseCommand):
    help = "Delete request logs older than --older-than DAYS (default CCSITE_REQUEST_LOG_RETENTION_DAYS)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--older-than", type=int, metavar="DAYS", default=None)
        parser.add_argument("--batch-size", type=int, default=5000)

    def handle(self, *args: object, older_than: int | None, batch_size: int, **options: object) -> None:
        days = settings.CCSITE_REQUEST_LOG_RETENTION_DAYS if older_than is None else older_than
        if days <= 0:
            self.stdout.write("Retention is off (0 days): nothing deleted.")
            return
        cutoff = timezone.now() - timedelta(days=days)
        logs, bodies = prune_request_logs(before=cutoff, batch_size=batch_size)
        self.stdout.write(f"Deleted {logs} request logs and {bodies} bodies older than {days} days.")
