"""Opt-in body logging keeps redacted, size-capped bodies and never a key."""

from __future__ import annotations

import json

import pytest
from asgiref.testing import ApplicationCommunicator

from ccsite.asgi import django_asgi_app
from usage.models import RequestBody
from usage.recorder import writer
from usage.redaction import REDACTED, capped, redact

SECRET_TEXTS = [
    "ccs_AbCdEfGhIjKl0123456789abcdefghijklmnopqrstuv",
    "user_0123456789abcdefSECRET",
    "sk-ant-api03-abcdefghijklmnop",
    "Zx81Qw7eRt5yUi3oP0aSdFgHjKlZxCvBnM12",
]


def test_redaction_removes_keys_bearer_values_and_token_like_strings():
    text = json.dumps(
        {"api_key": "plain-words-but-a-key", "authorization": "Bearer abc", "note": " ".join(SECRET_TEXTS)}
    )
    redacted = redact(text + " Authorization: Bearer qwerty.123")
    for secret in [*SECRET_TEXTS, "plain-words-but-a-key", "qwerty.123"]:
        assert secret not in redacted
    assert REDACTED in redacted and '"note"' in redacted


def test_cap_keeps_a_marker_and_no_key_across_the_cut():
    raw = ("x" * 90 + " " + SECRET_TEXTS[0]).encode()
    kept = capped(raw, 100)
    assert SECRET_TEXTS[0][:12] not in kept and "more bytes not kept" in kept


async def asgi_post(
    path: str, body: bytes, headers: list[tuple[bytes, bytes]]
) -> tuple[int, dict[bytes, bytes]]:
    scope = {
        "type": "http",
        "http_version": "1.1",
        "method": "POST",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "scheme": "http",
        "headers": [(b"host", b"127.0.0.1"), (b"content-type", b"application/json"), *headers],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 80),
    }
    app = ApplicationCommunicator(django_asgi_app, scope)
    await app.send_input({"type": "http.request", "body": body, "more_body": False})
    start = await app.receive_output(5)
    await app.receive_output(5)
    await app.wait(5)
    return start["status"], dict(start["headers"])


@pytest.mark.django_db(transaction=True)
async def test_opt_in_body_logging_stores_no_key(settings, client_key):
    settings.CCSITE_REQUEST_LOG_BODIES = True
    writer.clear()
    key = client_key[1]
    body = json.dumps(
        {
            "model": "m",
            "messages": "not a list",
            "api_key": key,
            "note": f"my key is {key}",
            "n": SECRET_TEXTS,
        }
    ).encode()
    status, headers = await asgi_post(
        "/v1/chat/completions", body, [(b"authorization", f"Bearer {key}".encode())]
    )
    assert status == 400
    from asgiref.sync import sync_to_async

    assert await sync_to_async(writer.flush, thread_sensitive=False)()
    stored = await RequestBody.objects.aget(request_id=headers[b"x-request-id"].decode())
    everything = stored.request_body + stored.response_body
    assert '"messages"' in stored.request_body and "error" in stored.response_body
    for secret in [key, *SECRET_TEXTS]:
        assert secret not in everything


@pytest.mark.django_db(transaction=True)
async def test_bodies_are_off_by_default(client_key):
    writer.clear()
    status, headers = await asgi_post("/v1/chat/completions", b"{}", [(b"x-api-key", client_key[1].encode())])
    assert status == 400 and headers[b"x-request-id"].startswith(b"req_")
    from asgiref.sync import sync_to_async

    await sync_to_async(writer.flush, thread_sensitive=False)()
    assert await RequestBody.objects.acount() == 0
