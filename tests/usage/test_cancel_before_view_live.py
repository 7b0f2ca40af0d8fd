"""A client that sends its whole request and leaves at once, before the gateway has even
authenticated it, still leaves exactly one request-log row: cancelled, 499."""

from __future__ import annotations

import json
import socket
import time
from datetime import datetime

import pytest
from django.utils import timezone

from tests.factories import make_client_key
from usage.models import RequestLog

pytestmark = [pytest.mark.live]

MODEL = "deepseek/deepseek-v4-flash"


def send_and_leave(url: str, key: str, path: str, body: dict) -> None:
    host, port = url.removeprefix("http://").split(":")
    data = json.dumps(body).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
    )
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(head.encode() + data)


def rows_once_settled(expected: int, since: datetime, timeout: float = 5.0) -> list[tuple[str, str, int]]:
    """The rows of requests made from ``since`` on, once ``expected`` are there, and a little
    longer (a duplicate would show). The live gateway is shared: a previous test's last
    request can be logged after that test has ended."""
    rows = RequestLog.objects.filter(created_at__gte=since)
    deadline = time.monotonic() + timeout
    while rows.count() < expected and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    return list(rows.values_list("surface", "outcome", "http_status"))


@pytest.mark.parametrize(
    ("path", "surface", "body"),
    [
        ("/v1/chat/completions", "openai-chat", {"messages": [{"role": "user", "content": "hi"}]}),
        ("/v1/responses", "responses", {"input": "hi"}),
    ],
)
def test_a_client_gone_before_authentication_leaves_one_cancelled_row(live, path, surface, body):
    # Fresh keys: authentication has to look each one up, so the client is gone before it ends.
    keys = [make_client_key()[1] for _ in range(5)]
    body = {"model": MODEL, "stream": True, **body}
    body_with_delay = json.loads(json.dumps(body).replace('"hi"', '"[sim:text headers_delay_ms=500] hi"'))
    since = timezone.now()
    for key in keys:
        send_and_leave(live.url, key, path, body_with_delay)
    assert rows_once_settled(len(keys), since) == [(surface, "cancelled", 499)] * len(keys)
