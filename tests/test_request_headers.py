"""API requests read their headers from META by name (ccsite/request_headers.py), with the
answers Django's HttpHeaders gives."""

from __future__ import annotations

from io import BytesIO

import pytest
from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.http.request import HttpHeaders

from ccsite.request_headers import MetaHeaders
from tests.asgi_calls import call_asgi
from tests.factories import make_client_key

RAW_HEADERS = [
    (b"host", b"gw.example"),
    (b"authorization", b"Bearer ccs_secret"),
    (b"x-api-key", b"  spaced  "),
    (b"content-type", b"application/json"),
    (b"content-length", b"2"),
    (b"user-agent", b"OpenAI/Python 1.0"),
    (b"x-multi", b"1"),
    (b"x-multi", b"2"),
    (b"anthropic-version", b"2023-06-01"),
]


def _request() -> ASGIRequest:
    scope = {"type": "http", "method": "POST", "path": "/v1/chat/completions", "headers": RAW_HEADERS}
    return ASGIRequest(scope, BytesIO(b"{}"))


NAMES = [
    "Host",
    "authorization",
    "AUTHORIZATION",
    "X-Api-Key",
    "content-type",
    "Content-Length",
    "user-agent",
    "x-multi",
    "Anthropic-Version",
    "x-missing",
    "content_type",
    "Remote-Addr",
]


@pytest.mark.parametrize("name", NAMES)
def test_a_lookup_answers_as_djangos_headers_do(name):
    meta = _request().META
    ours, django_headers = MetaHeaders(meta), HttpHeaders(meta)
    assert ours.get(name) == django_headers.get(name)
    assert (name in ours) == (name in django_headers)


def test_iteration_and_length_are_djangos():
    meta = _request().META
    ours, django_headers = MetaHeaders(meta), HttpHeaders(meta)
    assert list(ours) == list(django_headers) and len(ours) == len(django_headers)
    assert dict(ours) == dict(django_headers)


def test_a_missing_header_is_a_key_error():
    with pytest.raises(KeyError):
        MetaHeaders(_request().META)["x-missing"]


@pytest.mark.django_db(transaction=True)
async def test_api_requests_get_them(monkeypatch):
    from proxy import auth

    seen = []
    presented = auth.presented_key

    def spying(request):
        seen.append(request.headers)
        return presented(request)

    monkeypatch.setattr(auth, "presented_key", spying)
    _, secret = await sync_to_async(make_client_key)()
    status, _, _ = await call_asgi(
        "GET", "/v1/models", headers=[(b"authorization", f"Bearer {secret}".encode())]
    )
    assert status == 200
    assert len(seen) == 1 and isinstance(seen[0], MetaHeaders)
