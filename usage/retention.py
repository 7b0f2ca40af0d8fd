"""Retention of request logs: delete old rows in batches so no long write lock is held.

Rows go by whole hours, and the hourly roll-up (usage/rollups.py) of those hours goes with
them: reports always equal the sums of the rows present, and a rebuild never loses history.
"""

from __future__ import annotations

from datetime import datetime

from django.db import models, transaction

from usage import rollups
from usage.models import RequestBody, RequestLog


def _delete_in_batches(query: models.QuerySet, batch_size: int) -> int:
    deleted = 0
    while True:
        with transaction.atomic():
            ids = list(query.values_list("pk", flat=True)[:batch_size])
            if not ids:
                return deleted
            query.model.objects.filter(pk__in=ids).delete()
        deleted += len(ids)


def prune_request_logs(*, before: datetime, batch_size: int = 5000) -> tuple[int, int]:
    """(request logs, bodies) deleted from the hours that ended by ``before`` (the hour that
    contains ``before`` is kept whole), with those hours' roll-up."""
    hour = int(before.timestamp() // 3600)
    logs = _delete_in_batches(RequestLog.objects.filter(hour__lt=hour), batch_size)
    rollups.delete_before(hour, batch_size)
    cutoff = datetime.fromtimestamp(hour * 3600, tz=before.tzinfo)
    bodies = _delete_in_batches(RequestBody.objects.filter(created_at__lt=cutoff), batch_size)
    return logs, bodies
