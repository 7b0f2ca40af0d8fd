"""The request-log writer: exact rows under a burst, nothing lost while the database is locked
or failing, bounded memory, coalesced last_used_at."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from django.conf import settings
from django.db import OperationalError, connection, connections
from django.db.models import Count, Sum

from accounts.keycache import KeyPrincipal
from proxy.outcomes import RequestOutcome
from proxy.translate.events import Usage
from tests.factories import make_client_key
from tests.usage.helpers import wait_for_count
from usage.models import RequestLog
from usage.recorder import RequestLogWriter
from usage.selectors import ReportFilter, totals

MODEL = "deepseek/deepseek-v4-flash"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def assert_roll_up_equals_the_rows() -> None:
    """The hourly roll-up the writer kept sums exactly the rows it wrote."""
    everything = ReportFilter(since=EPOCH, until=datetime.now(UTC) + timedelta(hours=1))
    direct = RequestLog.objects.aggregate(
        requests=Count("id"), input_tokens=Sum("input_tokens"), output_tokens=Sum("output_tokens")
    )
    got = totals(everything)
    assert {name: got[name] for name in direct} == direct


def outcome(n: int, principal: KeyPrincipal | None = None) -> RequestOutcome:
    result = RequestOutcome("openai-chat", principal, MODEL, MODEL, False)
    result.request_id = f"req_test{n:06d}"
    result.status, result.http_status = "ok", 200
    result.usage = Usage(input_tokens=10 + n, output_tokens=n)
    return result


@pytest.fixture
def writer():
    return RequestLogWriter()


def _dechunk(data: bytes) -> bytes:
    body = b""
    while True:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            return body
        body, data = body + data[:size], data[size + 2 :]


async def _burst(url: str, key: str, count: int) -> list[tuple[int, dict[str, str], dict]]:
    """``count`` requests in flight at once. The connections are opened first, 50 at a time (a
    listen backlog is finite), then every request is sent in the same instant."""
    host, port = url.removeprefix("http://").split(":")
    body = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "[sim:text deltas=3]"}]})
    request = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n{body}"
    ).encode()
    opening = asyncio.Semaphore(50)

    async def connect() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        async with opening:
            return await asyncio.open_connection(host, int(port))

    connections = await asyncio.gather(*(connect() for _ in range(count)))
    go = asyncio.Event()

    async def exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> tuple[int, dict, dict]:
        await go.wait()
        writer.write(request)
        raw = await reader.read()
        writer.close()
        head, _, payload = raw.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        headers = dict(line.lower().split(": ", 1) for line in lines[1:])
        if headers.get("transfer-encoding") == "chunked":
            payload = _dechunk(payload)
        return int(lines[0].split()[1]), headers, json.loads(payload)

    tasks = [asyncio.create_task(exchange(reader, writer)) for reader, writer in connections]
    await asyncio.sleep(0)
    go.set()
    return await asyncio.gather(*tasks)


@pytest.mark.live
def test_a_burst_of_1000_concurrent_requests_leaves_exactly_1000_rows(live):
    responses = asyncio.run(_burst(live.url, live.key, 1000))
    assert [status for status, _, _ in responses] == [200] * 1000
    ids = {headers["x-request-id"] for _, headers, _ in responses}
    assert len(ids) == 1000
    assert wait_for_count(1000, request_id__in=ids) == 1000
    rows = RequestLog.objects.filter(request_id__in=ids)
    assert rows.count() == 1000  # exactly: no duplicate either
    sums = rows.aggregate(i=Sum("input_tokens"), o=Sum("output_tokens"))
    assert sums["o"] == sum(body["usage"]["completion_tokens"] for _, _, body in responses)
    assert sums["i"] == sum(body["usage"]["prompt_tokens"] for _, _, body in responses)
    # The report (read from the roll-up the writer kept) counts the burst exactly too.
    assert_roll_up_equals_the_rows()


def hold_the_request_log(seconds: float, locked: threading.Event, released: threading.Event) -> None:
    """Another connection locks the request log against writes for ``seconds``: SQLite's
    whole-database exclusive lock, or a PostgreSQL table lock."""
    if connection.vendor == "sqlite":
        other = sqlite3.connect(settings.DATABASES["default"]["NAME"], timeout=5, check_same_thread=False)
        other.execute("BEGIN EXCLUSIVE")
    else:
        other = connections.create_connection("default")
        other.set_autocommit(False)
        other.cursor().execute("LOCK TABLE usage_requestlog IN ACCESS EXCLUSIVE MODE")
    locked.set()
    time.sleep(seconds)
    other.rollback()
    other.close()
    released.set()


@pytest.mark.skipif(
    settings.DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3",
    reason="SQLite's whole-database lock (BEGIN EXCLUSIVE); PostgreSQL has no such lock to take",
)
@pytest.mark.django_db(transaction=True)
def test_rows_wait_while_the_database_is_locked(writer):
    for n in range(300):
        writer.record(outcome(n))
    locked, released = threading.Event(), threading.Event()
    threading.Thread(target=hold_the_request_log, args=(3, locked, released)).start()
    assert locked.wait(10)
    started = time.monotonic()
    while not writer.flush():  # the writer thread's loop: retry until the database answers
        time.sleep(0.2)
    assert released.is_set() and time.monotonic() - started >= 2.5
    assert RequestLog.objects.count() == 300 and writer.pending() == 0
    assert sum(RequestLog.objects.values_list("output_tokens", flat=True)) == sum(range(300))
    assert_roll_up_equals_the_rows()


@pytest.mark.django_db(transaction=True)
def test_a_failing_database_keeps_the_batch_in_order(writer, monkeypatch):
    for n in range(5):
        writer.record(outcome(n))
    from usage import recorder

    real = recorder.insert_rows
    failures = iter([OperationalError("database is locked"), OperationalError("server closed")])

    def flaky(rows):
        error = next(failures, None)
        if error is not None:
            raise error
        return real(rows)

    monkeypatch.setattr(recorder, "insert_rows", flaky)
    assert writer.flush() is False and writer.flush() is False and writer.pending() == 5
    assert writer.flush() is True and writer.failures == 2
    assert list(RequestLog.objects.order_by("id").values_list("request_id", flat=True)) == [
        f"req_test{n:06d}" for n in range(5)
    ]


@pytest.mark.django_db(transaction=True)
def test_the_background_thread_writes_and_shuts_down_cleanly(writer, settings):
    settings.CCSITE_REQUEST_LOG_BACKGROUND = True
    settings.CCSITE_REQUEST_LOG_FLUSH_SECONDS = 0.05
    for n in range(20):
        writer.record(outcome(n))
    assert wait_for_count(20, timeout=10) == 20
    writer.record(outcome(99))
    writer.shutdown(timeout=5)  # what a graceful stop does: write what is still queued
    assert RequestLog.objects.count() == 21


def test_the_queue_is_bounded_and_drops_are_counted(writer, settings, caplog):
    settings.CCSITE_REQUEST_LOG_QUEUE_MAX = 10
    for n in range(15):
        writer.record(outcome(n))
    assert writer.pending() == 10 and writer.dropped == 5
    assert "rows dropped" in caplog.text


@pytest.mark.django_db(transaction=True)
def test_last_used_is_coalesced(writer, settings, django_assert_max_num_queries):
    settings.CCSITE_LAST_USED_SECONDS = 60
    key, _ = make_client_key()
    principal = KeyPrincipal(key_id=key.pk, key_name=key.name, user_id=key.user_id, username="x")
    for n in range(50):
        writer.record(outcome(n, principal))
    writer.flush()
    key.refresh_from_db()
    first = key.last_used_at
    assert first is not None
    writer.record(outcome(51, principal))
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        writer.flush()
    assert not any("accounts_clientkey" in q["sql"] for q in queries.captured_queries)
    key.refresh_from_db()
    assert key.last_used_at == first  # within the minute: no second write


@pytest.mark.live
def test_rows_still_queued_are_written_on_graceful_shutdown(simulator, transactional_db):
    from tests.factories import make_credential
    from tests.live import daphne_process, free_port

    make_credential(label="shutdown", api_key="user_shutdown_0000abcd")
    _, key = make_client_key()
    env = {
        "CC_UPSTREAM_BASE_URL": simulator.url,
        "CCSITE_REQUEST_LOG_BACKGROUND": "1",
        "CCSITE_REQUEST_LOG_FLUSH_SECONDS": "600",  # nothing is written before the stop
    }
    with daphne_process(port=free_port(), env=env) as gateway:
        body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
        ids = []
        for _ in range(5):
            response = httpx.post(
                f"{gateway.url}/v1/chat/completions", json=body, headers={"x-api-key": key}, timeout=10
            )
            assert response.status_code == 200
            ids.append(response.headers["x-request-id"])
        assert RequestLog.objects.filter(request_id__in=ids).count() == 0
    # Leaving the block sent SIGTERM and waited for the process to exit.
    assert RequestLog.objects.filter(request_id__in=ids).count() == 5


def varied_outcome(n: int, principals: list[KeyPrincipal]) -> RequestOutcome:
    """Outcomes of every kind: with and without a key, served or failed, estimated or not."""
    principal = principals[n % len(principals)] if n % 7 else None
    result = RequestOutcome(
        "anthropic-messages" if n % 3 else "openai-chat", principal, MODEL, MODEL, n % 2 == 0
    )
    result.request_id = f"req_varied{n:06d}"
    result.credential_id = None if n % 5 == 0 else 1 + n % 2
    if n % 4 == 0:
        result.set_error("retryable", "upstream 502")
        result.http_status = 502
    else:
        result.status, result.http_status = "ok", 200
        result.first_token_ms = 3.0 * (n % 50) + 0.5
        result.usage = Usage(input_tokens=100 + n, cache_read_tokens=n % 40, output_tokens=n % 13)
        result.usage_estimated = n % 9 == 0
    return result


@pytest.mark.django_db(transaction=True)
def test_the_roll_up_kept_batch_by_batch_equals_a_rebuild(writer, settings):
    from usage import rollups

    settings.CCSITE_REQUEST_LOG_BATCH = 37  # many batches, each adding to the same hours
    keys = [make_client_key()[0] for _ in range(3)]
    principals = [KeyPrincipal(key_id=k.pk, key_name=k.name, user_id=k.user_id, username="u") for k in keys]
    for n in range(400):
        writer.record(varied_outcome(n, principals))
        if n % 100 == 99:
            assert writer.flush()
    assert RequestLog.objects.count() == 400

    def contents() -> list[list[tuple]]:
        return [
            sorted(tuple(row.values())[1:] for row in model.objects.values()) for model, _ in rollups.TABLES
        ]

    kept = contents()
    assert rollups.rebuild() == 400
    assert contents() == kept and len(kept[1]) < len(kept[0])
    assert_roll_up_equals_the_rows()


@pytest.mark.django_db(transaction=True)
def test_two_writers_adding_to_the_same_hours_at_once_lose_nothing():
    """Two processes' writers (here two threads, each with its own connection) upsert the same
    roll-up rows concurrently; the database serialises them and every increment lands."""
    from django.db import connection as thread_connection

    writers = [RequestLogWriter(), RequestLogWriter()]
    for n in range(1200):
        writers[n % 2].record(outcome(n))
    start = threading.Barrier(2)

    def drain(one: RequestLogWriter) -> None:
        start.wait()
        try:
            while not one.flush():
                time.sleep(0.05)
        finally:
            thread_connection.close()

    threads = [threading.Thread(target=drain, args=(one,)) for one in writers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    # Only this test's rows: a live gateway of an earlier test in this worker may still write
    # a late row of its own into the shared database.
    assert RequestLog.objects.filter(request_id__startswith="req_test").count() == 1200
    assert_roll_up_equals_the_rows()
