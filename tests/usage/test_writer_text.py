"""Request-log text the client chose (model names, session ids, captured bodies) is stored on
every database: PostgreSQL's text type cannot hold NUL, and one such row must not hold back
the batch (and every row queued after it) forever."""

from __future__ import annotations

import pytest

from proxy.outcomes import RequestOutcome
from proxy.translate.events import Usage
from usage.models import RequestBody, RequestLog
from usage.recorder import RequestLogWriter

pytestmark = [pytest.mark.django_db]


def outcome(request_id: str, client_model: str, session_id: str = "") -> RequestOutcome:
    result = RequestOutcome("openai-chat", None, client_model, "", False)
    result.request_id = request_id
    result.status, result.http_status = "invalid", 404
    result.error_kind, result.error_message = "model_not_found", f"The model {client_model} does not exist"
    result.session_id = session_id
    result.usage = Usage()
    return result


def test_a_nul_in_client_text_is_stored_as_the_replacement_character():
    writer = RequestLogWriter()
    writer.record(outcome("req_nul", "bad\x00model", session_id="s\x00id"))
    writer.record(outcome("req_after", "deepseek/deepseek-v4-flash"))
    writer.record_body("req_nul", '{"model": "bad\x00model"}', "answer\x00")
    assert writer.flush() is True and writer.pending() == 0
    row = RequestLog.objects.get(request_id="req_nul")
    assert (row.client_model, row.session_id) == ("bad\ufffdmodel", "s\ufffdid")
    assert row.error_message == "The model bad\ufffdmodel does not exist"
    assert RequestLog.objects.filter(request_id="req_after").exists()
    body = RequestBody.objects.get(request_id="req_nul")
    assert (body.request_body, body.response_body) == ('{"model": "bad\ufffdmodel"}', "answer\ufffd")


def test_a_row_the_database_refuses_for_its_content_is_dropped_and_the_others_are_written(
    monkeypatch, caplog
):
    """A value no retry can store (PostgreSQL: a token count past its integer column, say)
    costs that row only: it is dropped, counted and logged; the batch around it is written."""
    from django.db import DataError

    from usage import recorder

    real = recorder.insert_rows

    def refusing(rows):
        if any(row["request_id"] == "req_poison" for row in rows):
            raise DataError("integer out of range")
        return real(rows)

    monkeypatch.setattr(recorder, "insert_rows", refusing)
    writer = RequestLogWriter()
    for request_id in ("req_before", "req_poison", "req_after"):
        writer.record(outcome(request_id, "deepseek/deepseek-v4-flash"))
    assert writer.flush() is True and writer.pending() == 0
    stored = set(RequestLog.objects.values_list("request_id", flat=True))
    assert stored == {"req_before", "req_after"}
    assert writer.dropped == 1
    assert "req_poison" in caplog.text
