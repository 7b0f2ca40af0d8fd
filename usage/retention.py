"""Retention of request logs: delete old rows in batches so no long write lock is held."""

from __future__ import annotations

from datetime import datetime

from django.db import models, transaction

from usage.models import RequestBody, RequestLog


def _delete_in_batches(model: type[models.Model], before: datetime, batch_size: int) -> int:
    deleted = 0
    while True:
        with transaction.atomic():
            ids = list(model.objects.filter(created_at__lt=before).values_list("pk", flat=True)[:batch_size])
            if not ids:
                return deleted
            model.objects.filter(pk__in=ids).delete()
        deleted += len(ids)


def prune_request_logs(*, before: datetime, batch_size: int = 5000) -> tuple[int, int]:
    """(request logs, bodies) deleted that were created before ``before``."""
    return (
        _delete_in_batches(RequestLog, before, batch_size),
        _delete_in_batches(RequestBody, before, batch_size),
    )
