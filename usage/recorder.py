"""The request log's writer: outcomes are queued in memory and written in batches, off the
request path.

``record`` (subscribed to ``proxy.outcomes``) only appends to a deque: no query, no await. A
daemon thread wakes every CCSITE_REQUEST_LOG_FLUSH_SECONDS (or as soon as a batch is full),
turns the queued outcomes into ``RequestLog`` rows, writes them with one multi-row insert per
batch (``executemany`` of plain tuples: building a model instance per row cost more than the
rest of the logging together) and adds their sums to the hourly roll-up in the same
transaction (usage/rollups.py), keeps ``last_used_at`` of client keys and credentials current
(at most one write per key per CCSITE_LAST_USED_SECONDS), and announces the rows to the live
view. If the database is unavailable or locked, the batch goes back to the front of the queue
and is retried with a capped backoff: a request never fails because logging did. The queue is bounded
(CCSITE_REQUEST_LOG_QUEUE_MAX); past it new rows are dropped, counted and logged loudly. A
batch the database refuses for a value it holds (``DataError``: no retry could store it) is
written row by row, and only the refused rows are dropped, counted and logged.
Everything queued is flushed on shutdown (ASGI lifespan, and at interpreter exit).
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import math
import operator
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db import DatabaseError, DataError, connection, models, transaction
from django.db.backends.base.operations import BaseDatabaseOperations

from ccsite.settings_cache import cached_settings
from proxy import metrics, outcomes
from proxy.outcomes import CLIENT_CLOSED_REQUEST, RequestOutcome
from proxy.translate.events import Usage
from usage import live, pricing, rollups
from usage.histogram import fine_bucket
from usage.models import RequestBody, RequestLog

logger = logging.getLogger(__name__)

_MAX_BACKOFF_SECONDS = 5.0
_DROP_LOG_INTERVAL = 10.0
_COST_QUANTUM = Decimal(1).scaleb(-RequestLog._meta.get_field("cost_usd").decimal_places)  # type: ignore[union-attr,arg-type]


@dataclass(slots=True)
class QueuedOutcome:
    outcome: RequestOutcome
    finished_at: float  # wall clock, seconds since the epoch
    duration_ms: float


@dataclass(slots=True)
class QueuedBody:
    request_id: str
    finished_at: float
    request_body: str
    response_body: str


def _tokens(item: QueuedOutcome) -> tuple[Usage, bool]:
    """(usage, estimated). Upstream usage when it came; otherwise the gateway's input estimate
    for a request the upstream did start on (cancelled, or ended after its 200), never a silent
    zero; nothing for a request that never reached the upstream or that it refused."""
    outcome = item.outcome
    if outcome.usage is not None:
        return outcome.usage, outcome.usage_estimated
    estimate = outcome.estimated_input_tokens
    if estimate and outcome.reached_upstream:
        return Usage(input_tokens=estimate), True
    return Usage(), False


Row = dict[str, Any]  # RequestLog field attnames -> values


def build_row(item: QueuedOutcome) -> Row:
    outcome = item.outcome
    principal = outcome.principal
    usage, estimated = _tokens(item)
    http_status = outcome.http_status
    if not http_status and outcome.status == "cancelled":
        http_status = CLIENT_CLOSED_REQUEST
    model = outcome.upstream_model[:200]
    # One dict display, ``storable`` on the text columns only: this runs for every row stored.
    return {
        "created_at": datetime.fromtimestamp(item.finished_at, tz=UTC),
        "hour": int(item.finished_at // 3600),
        "request_id": storable(outcome.request_id),
        "user_id": (principal.user_id or None) if principal else None,
        "client_key_id": (principal.key_id or None) if principal else None,
        "credential_id": outcome.credential_id,
        "surface": storable(outcome.surface),
        "client_model": storable(outcome.client_model[:200]),
        "model": storable(model),
        "stream": outcome.streaming,
        "outcome": storable(outcome.status),
        "http_status": http_status,
        "error_code": storable(outcome.error_kind[:64]),
        "error_message": storable(outcome.error_message[:300]),
        "first_token_ms": outcome.first_token_ms,
        "duration_ms": item.duration_ms,
        "ttft_bucket": None if outcome.first_token_ms is None else fine_bucket(outcome.first_token_ms),
        "duration_bucket": fine_bucket(item.duration_ms),
        "failovers": outcome.failovers,
        "input_tokens": usage.input_tokens,
        "uncached_input_tokens": usage.uncached_input_tokens,
        "cache_read_tokens": usage.cache_read_tokens,
        "cache_write_tokens": usage.cache_write_tokens,
        "output_tokens": usage.output_tokens,
        "reasoning_tokens": usage.reasoning_tokens,
        "tokens_estimated": estimated,
        "user_agent": storable(outcome.user_agent[:300]),
        "session_id": storable(outcome.session_id[:200]),
        "cost_usd": _cost(usage, model),  # priced by the name as sent upstream
    }


def storable(text: str) -> str:
    """``text`` as every database stores it: PostgreSQL's text type refuses NUL, which a client
    can put in a model name or a body (one such row would hold back its batch and every row
    queued after it, forever)."""
    return text.replace("\x00", "\ufffd") if "\x00" in text else text


def _cost(usage: Usage, model: str) -> Decimal | None:
    """The estimated cost at the column's 8 decimal places (rounded half up, as PostgreSQL
    rounds): the stored value on every database, so the roll-up's exact sum equals the rows'."""
    cost = pricing.cost_usd(usage, pricing.prices_for(model)) if model else None
    return None if cost is None else cost.quantize(_COST_QUANTUM, rounding=ROUND_HALF_UP)


Adapter = Callable[[Any], Any]


def _adapt_datetime(value: datetime) -> Any:
    return connection.ops.adapt_datetimefield_value(value)


def _adapt_utc_datetime(value: datetime) -> Any:
    """SQLite on a UTC connection: a UTC value's naive text, as Django's adapter gives it
    (``make_naive`` to UTC, then ``str``) without its checks; other values go through it."""
    if value.tzinfo is UTC:
        return str(value.replace(tzinfo=None))
    return connection.ops.adapt_datetimefield_value(value)


def _datetime_adapter() -> Adapter | None:
    """Django's datetime adapter for this database, or an identical cheaper one: none on
    PostgreSQL, whose adapter returns the value unchanged."""
    if connection.vendor == "postgresql":
        return None
    if connection.vendor == "sqlite" and connection.timezone is UTC:  # None unless USE_TZ
        return _adapt_utc_datetime
    return _adapt_datetime


def _adapter(field: models.Field) -> Adapter | None:
    if isinstance(field, models.DateTimeField):
        return _datetime_adapter()
    if isinstance(field, models.DecimalField):
        if type(connection.ops).adapt_decimalfield_value is BaseDatabaseOperations.adapt_decimalfield_value:
            return None  # Django's default returns the value unchanged (SQLite, PostgreSQL)
        digits, places = field.max_digits, field.decimal_places
        return lambda value: connection.ops.adapt_decimalfield_value(value, digits, places)
    return None


@dataclass(frozen=True, slots=True)
class InsertPlan:
    """The INSERT statement, a getter of a row's values in column order, and the columns whose
    values Django adapts for this database (position, adapter)."""

    sql: str
    values: Callable[[Row], tuple[Any, ...]]
    adapted: tuple[tuple[int, Adapter], ...]

    def params(self, row: Row) -> tuple[Any, ...]:
        values = self.values(row)
        if not self.adapted:
            return values
        adapted = list(values)
        for index, adapt in self.adapted:
            if adapted[index] is not None:
                adapted[index] = adapt(adapted[index])
        return tuple(adapted)


_insert_plans: dict[tuple[str, str, Any], InsertPlan] = {}


def _insert_plan() -> InsertPlan:
    """The INSERT plan, made once per database (and time zone), not per batch or row."""
    key = (connection.alias, connection.vendor, connection.timezone)
    plan = _insert_plans.get(key)
    if plan is None:
        fields = [field for field in RequestLog._meta.concrete_fields if not field.primary_key]
        quote = connection.ops.quote_name
        columns = ", ".join(quote(field.column) for field in fields)
        placeholders = ", ".join(["%s"] * len(fields))
        sql = f"INSERT INTO {quote(RequestLog._meta.db_table)} ({columns}) VALUES ({placeholders})"
        adapters = ((index, _adapter(field)) for index, field in enumerate(fields))
        plan = _insert_plans[key] = InsertPlan(
            sql,
            operator.itemgetter(*(field.attname for field in fields)),
            tuple((index, adapt) for index, adapt in adapters if adapt is not None),
        )
    return plan


def insert_rows(rows: list[Row]) -> None:
    """One INSERT executed for every row, values adapted as Django would for this database."""
    plan = _insert_plan()
    params = [plan.params(row) for row in rows]
    with connection.cursor() as cursor:
        cursor.executemany(plan.sql, params)


class LastUsed:
    """Coalesces ``last_used_at`` writes: at most one per key per interval."""

    def __init__(self) -> None:
        self._written: dict[tuple[str, int], float] = {}

    def due(self, rows: list[Row], interval: float) -> dict[tuple[str, int], datetime]:
        latest: dict[tuple[str, int], datetime] = {}
        for row in rows:
            when = row["created_at"]
            for target in (("key", row["client_key_id"]), ("credential", row["credential_id"])):
                if target[1] is not None:
                    latest[target] = max(latest.get(target, when), when)  # type: ignore[index]
        now = time.monotonic()
        return {
            target: when
            for target, when in latest.items()
            if now - self._written.get(target, -math.inf) >= interval
        }

    def written(self, targets: dict[tuple[str, int], datetime]) -> None:
        now = time.monotonic()
        for target in targets:
            self._written[target] = now


def _write_last_used(targets: dict[tuple[str, int], datetime]) -> None:
    from accounts.models import ClientKey, UpstreamCredential

    models = {"key": ClientKey, "credential": UpstreamCredential}
    for (kind, pk), when in targets.items():
        models[kind].objects.filter(pk=pk).update(last_used_at=when)


class RequestLogWriter:
    def __init__(self) -> None:
        self._queue: deque[QueuedOutcome | QueuedBody] = deque()
        self._write_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._last_used = LastUsed()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.dropped = 0
        self.failures = 0
        self._dropped_logged_at = -math.inf

    # -- the request path: append only ------------------------------------------------------

    def record(self, outcome: RequestOutcome) -> None:
        self._submit(QueuedOutcome(outcome, time.time(), outcome.duration_ms))

    def record_body(self, request_id: str, request_body: str, response_body: str) -> None:
        self._submit(QueuedBody(request_id, time.time(), request_body, response_body))

    def _submit(self, item: QueuedOutcome | QueuedBody) -> None:
        if len(self._queue) >= cached_settings.CCSITE_REQUEST_LOG_QUEUE_MAX:
            self._drop()
            return
        self._queue.append(item)
        try:
            self._loop = asyncio.get_running_loop()  # where live-view messages are sent
        except RuntimeError:
            pass
        if self._thread is None and cached_settings.CCSITE_REQUEST_LOG_BACKGROUND:
            self._start()
        if len(self._queue) >= cached_settings.CCSITE_REQUEST_LOG_BATCH:
            self._wake.set()

    def _drop(self) -> None:
        self.dropped += 1
        metrics.LOG_DROPPED.inc()
        now = time.monotonic()
        if now - self._dropped_logged_at >= _DROP_LOG_INTERVAL:
            self._dropped_logged_at = now
            logger.error(
                "request log queue full (%d rows waiting, the database is not keeping up): "
                "%d rows dropped so far",
                len(self._queue),
                self.dropped,
            )

    # -- the writer thread -----------------------------------------------------------------

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is None:
                self._stop.clear()
                self._thread = threading.Thread(target=self._run, name="request-log-writer", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        backoff = 0.0
        while not self._stop.is_set():
            self._wake.wait(backoff or cached_settings.CCSITE_REQUEST_LOG_FLUSH_SECONDS)
            self._wake.clear()
            backoff = 0.0 if self.flush() else min(max(backoff * 2, 0.1), _MAX_BACKOFF_SECONDS)
            metrics.LOG_QUEUE_DEPTH.set(len(self._queue))
        connection.close()

    def flush(self) -> bool:
        """Write everything queued now, batch by batch. False if the database refused a batch
        (it stays queued, in order, for the next try)."""
        with self._write_lock:
            while self._queue:
                batch = [
                    self._queue.popleft()
                    for _ in range(min(len(self._queue), cached_settings.CCSITE_REQUEST_LOG_BATCH))
                ]
                try:
                    rows = self._write(batch)
                except DataError as exc:
                    # A value the database refuses (not an outage): every retry of this batch
                    # would fail and hold back every row queued after it.
                    logger.error("request log: the database refused a batch (%s); writing it row by row", exc)
                    written = self._write_each(batch)
                    if written is None:
                        return False
                    rows = written
                except DatabaseError as exc:
                    self._queue.extendleft(reversed(batch))
                    self.failures += 1
                    logger.warning("request log: %d rows wait for the database (%s)", len(batch), exc)
                    if not connection.in_atomic_block:
                        connection.close()  # a fresh connection for the retry
                    return False
                self._announce(rows)
        return True

    def _write_each(self, batch: list[QueuedOutcome | QueuedBody]) -> list[Row] | None:
        """Write ``batch`` one item at a time, dropping (counted, logged) each the database
        refuses for its content. None if the database failed otherwise: the rest is queued again."""
        rows: list[Row] = []
        for index, item in enumerate(batch):
            try:
                rows += self._write([item])
            except DataError as exc:
                self.dropped += 1
                metrics.LOG_DROPPED.inc()
                request_id = item.outcome.request_id if isinstance(item, QueuedOutcome) else item.request_id
                logger.error("request log: dropped %s, which the database refuses (%s)", request_id, exc)
            except DatabaseError:
                self._queue.extendleft(reversed(batch[index:]))
                self.failures += 1
                self._announce(rows)
                return None
        return rows

    def _write(self, batch: list[QueuedOutcome | QueuedBody]) -> list[Row]:
        rows = [build_row(item) for item in batch if isinstance(item, QueuedOutcome)]
        bodies = [
            RequestBody(
                request_id=item.request_id,
                created_at=datetime.fromtimestamp(item.finished_at, tz=UTC),
                request_body=storable(item.request_body),
                response_body=storable(item.response_body),
            )
            for item in batch
            if isinstance(item, QueuedBody)
        ]
        last_used = self._last_used.due(rows, cached_settings.CCSITE_LAST_USED_SECONDS)
        with transaction.atomic():
            if rows:
                insert_rows(rows)
                rollups.add(rows)
            if bodies:
                RequestBody.objects.bulk_create(bodies, ignore_conflicts=True)
            _write_last_used(last_used)
        self._last_used.written(last_used)
        return rows

    def _announce(self, rows: list[Row]) -> None:
        loop = self._loop
        if not rows or loop is None or loop.is_closed():
            return
        try:
            live.announce(loop, rows)
        except Exception:  # the live view must never stop the log
            logger.exception("request log: live view announcement failed")

    # -- lifecycle ---------------------------------------------------------------------------

    def pending(self) -> int:
        return len(self._queue)

    def clear(self) -> None:
        with self._write_lock:
            self._queue.clear()
        self.dropped = self.failures = 0
        self._last_used = LastUsed()

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop the thread and write what is still queued (retrying until ``timeout``)."""
        self._stop.set()
        self._wake.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)
        if not cached_settings.CCSITE_REQUEST_LOG_BACKGROUND:
            return  # rows are written only when asked (tests)
        deadline = time.monotonic() + timeout
        while self._queue and not self.flush() and time.monotonic() < deadline:
            time.sleep(0.2)
        if self._queue:
            logger.error("request log: %d rows could not be written at shutdown", len(self._queue))


writer = RequestLogWriter()
_installed = False


def record(outcome: RequestOutcome) -> None:
    writer.record(outcome)


def install() -> None:
    """Subscribe to finished requests (from the app's ready(); idempotent)."""
    global _installed
    if not _installed and cached_settings.CCSITE_REQUEST_LOG:
        outcomes.add_recorder(record)
        atexit.register(writer.shutdown)
        _installed = True


def stats() -> dict[str, Any]:
    return {"pending": writer.pending(), "dropped": writer.dropped, "failures": writer.failures}
