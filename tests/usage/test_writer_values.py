"""The writer's INSERT parameters are exactly what Django would send for this database (its
shortcuts for created_at and cost_usd included), so the stored rows are the ORM's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from django.db import connection

from catalog import services as catalog_services
from catalog import snapshot
from proxy.outcomes import RequestOutcome
from proxy.translate.events import Usage
from usage.models import RequestLog
from usage.recorder import QueuedOutcome, RequestLogWriter, _insert_plan, build_row, insert_rows

MODEL = "deepseek/deepseek-v4-flash"
FIELDS = [field for field in RequestLog._meta.concrete_fields if not field.primary_key]


def _row(request_id: str, finished_at: float) -> dict:
    outcome = RequestOutcome("openai-chat", None, MODEL, MODEL, False)
    outcome.request_id, outcome.status, outcome.http_status = request_id, "ok", 200
    outcome.usage = Usage(input_tokens=1_234, cache_read_tokens=34, output_tokens=567)
    outcome.first_token_ms = 12.5
    return build_row(QueuedOutcome(outcome, finished_at, 40.25))


def _django_params(row: dict) -> tuple:
    return tuple(field.get_db_prep_save(row[field.attname], connection) for field in FIELDS)


def test_the_insert_parameters_are_djangos_and_the_stored_values_read_back(db):
    catalog_services.set_prices(MODEL, input="0.135", output="1.10", cache_read="0.07")
    snapshot.reload()
    rows = [_row("req_whole_second", 1_700_000_000.0), _row("req_fraction", 1_700_000_000.123456)]
    # A caller's own aware value in another zone (usage_report_timing builds its rows itself).
    rows.append({**rows[1], "request_id": "req_other_zone"})
    rows[2]["created_at"] = rows[2]["created_at"].astimezone(timezone(timedelta(hours=5, minutes=30)))
    plan = _insert_plan()
    for row in rows:
        params, django = plan.params(row), _django_params(row)
        assert params == django
        # The adapted columns have Django's very values (text on SQLite), not merely equal ones.
        # (Integers are compared by value: on PostgreSQL Django wraps them in psycopg's Int4 and
        # such, which the writer never did; the stored values are the same.)
        for name in ("created_at", "cost_usd"):
            index = FIELDS.index(RequestLog._meta.get_field(name))
            assert type(params[index]) is type(django[index])
    assert rows[0]["cost_usd"] == Decimal("0.00078808")

    insert_rows(rows)
    stored = {row.request_id: row for row in RequestLog.objects.all()}
    assert stored["req_whole_second"].created_at == datetime.fromtimestamp(1_700_000_000, tz=UTC)
    assert stored["req_fraction"].created_at == datetime(2023, 11, 14, 22, 13, 20, 123456, tzinfo=UTC)
    assert stored["req_other_zone"].created_at == stored["req_fraction"].created_at
    assert {row.cost_usd for row in stored.values()} == {Decimal("0.00078808")}


def test_sqlite_stores_created_at_as_djangos_text(db):
    """SQLite keeps the text Django's adapter makes: UTC, and no fraction for a whole second."""
    if connection.vendor != "sqlite":
        pytest.skip("PostgreSQL stores a timestamp; the parameters test covers it")
    writer = RequestLogWriter()
    for request_id, finished_at in (("req_whole", 1_700_000_000.0), ("req_fraction", 1_700_000_000.5)):
        outcome = RequestOutcome("openai-chat", None, MODEL, MODEL, False)
        outcome.request_id, outcome.status, outcome.http_status = request_id, "ok", 200
        writer._queue.append(QueuedOutcome(outcome, finished_at, 5.0))
    assert writer.flush()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT typeof(created_at), CAST(created_at AS TEXT) FROM usage_requestlog ORDER BY id"
        )
        stored = cursor.fetchall()
    assert stored == [("text", "2023-11-14 22:13:20"), ("text", "2023-11-14 22:13:20.500000")]
