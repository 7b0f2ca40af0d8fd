"""Shared helpers of the request-log tests: wait for a row the gateway's writer thread wrote."""

from __future__ import annotations

import time

from usage.models import RequestLog


def wait_for_row(request_id: str, timeout: float = 10.0, **expected: object) -> RequestLog:
    """The log row of ``request_id`` once it exists (and matches ``expected``)."""
    deadline = time.monotonic() + timeout
    row = None
    while time.monotonic() < deadline:
        row = RequestLog.objects.filter(request_id=request_id).first()
        if row is not None and all(getattr(row, name) == value for name, value in expected.items()):
            return row
        time.sleep(0.05)
    raise AssertionError(f"no log row {request_id} matching {expected}: {row and vars(row)}")


def wait_for_count(count: int, timeout: float = 30.0, **filters: object) -> int:
    deadline = time.monotonic() + timeout
    seen = -1
    while time.monotonic() < deadline:
        seen = RequestLog.objects.filter(**filters).count()
        if seen >= count:
            break
        time.sleep(0.1)
    return seen
