"""What the simulator saw: a bounded, in-memory log of requests, with secrets redacted.

Tests in another process read it over ``GET /_sim/requests``; in-process code uses
``Simulator.recorder`` directly.
"""

from __future__ import annotations

import hashlib
import itertools
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

REDACTED_HEADERS = frozenset({b"authorization", b"x-api-key", b"x-oauth-token", b"cookie"})

STREAMING = "streaming"  # the response is still being sent
COMPLETED = "completed"  # the simulator sent everything it meant to (even a truncated stream)
DISCONNECTED = "disconnected"  # the client went away before the simulator finished
CANCELLED = "cancelled"  # the server shut down mid-response


def key_fingerprint(key: str) -> str:
    """A stable, non-secret name for an API key: the first 16 hex digits of its SHA-256."""
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def redact_headers(headers: Iterable[tuple[bytes, bytes]]) -> list[list[str]]:
    """Headers in arrival order (duplicates kept, §3 order checks), secrets replaced."""
    redacted = []
    for name, value in headers:
        shown = "[redacted]" if name.lower() in REDACTED_HEADERS else value.decode("latin-1")
        redacted.append([name.decode("latin-1"), shown])
    return redacted


@dataclass(slots=True)
class RequestRecord:
    id: int
    method: str
    path: str
    query: str
    headers: list[list[str]]
    received_at: float = field(default_factory=time.time)
    key_fingerprint: str | None = None
    body: Any = None
    body_bytes: int = 0
    status: int | None = None
    scenario: str | None = None
    selected_by: str | None = None  # key, key-failure, directive, model or default
    params: dict[str, Any] = field(default_factory=dict)
    outcome: str = STREAMING
    events_sent: int = 0
    finish_sent: bool = False
    ended_at: float | None = None

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        return next((value for key, value in self.headers if key.lower() == lowered), None)

    def end(self, outcome: str) -> None:
        self.outcome = outcome
        self.ended_at = time.time()

    def as_json(self, *, with_body: bool = True) -> dict[str, Any]:
        data = {name: getattr(self, name) for name in self.__slots__}
        if not with_body:
            data.pop("body")
        return data


class Recorder:
    """The last ``limit`` requests, oldest dropped first."""

    def __init__(self, *, limit: int, body_limit: int) -> None:
        self._records: deque[RequestRecord] = deque(maxlen=max(1, limit))
        self._ids = itertools.count(1)
        self.body_limit = body_limit
        self.total_seen = 0

    def start(
        self, *, method: str, path: str, query: str, headers: list[tuple[bytes, bytes]]
    ) -> RequestRecord:
        record = RequestRecord(next(self._ids), method, path, query, redact_headers(headers))
        self._records.append(record)
        self.total_seen += 1
        return record

    def keep_body(self, record: RequestRecord, raw: bytes, parsed: Any) -> None:
        record.body_bytes = len(raw)
        if len(raw) <= self.body_limit:
            record.body = parsed

    def records(
        self, *, path: str | None = None, key_fingerprint: str | None = None, since: int = 0
    ) -> list[RequestRecord]:
        selected = list(self._records)  # a C-level copy: safe beside the server's thread
        return [
            record
            for record in selected
            if record.id > since
            and (path is None or record.path == path)
            and (key_fingerprint is None or record.key_fingerprint == key_fingerprint)
        ]

    def clear(self) -> None:
        self._records.clear()
