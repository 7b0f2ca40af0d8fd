"""Server limits over real sockets (issue 15): the listen backlog, header/body/idle deadlines,
and the opt-in fail-closed empty `length` answer with `x-should-retry: false`."""

from __future__ import annotations

import select
import shutil
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import openai
import pytest

from tests.golden import check_openai_sse
from tests.live import daphne_process, free_port

pytestmark = [pytest.mark.live]

MODEL = "deepseek/deepseek-v4-flash"
EMPTY_LENGTH = "[sim:reasoning deltas=0 finish=length]"


@pytest.fixture(scope="module")
def strict_gateway(simulator, django_db_setup, django_db_blocker):
    """A second gateway with short request deadlines and empty `length` answers failing closed."""
    env = {
        "CC_UPSTREAM_BASE_URL": simulator.url,
        "CCSITE_CREDENTIAL_CACHE_SECONDS": "0",
        "CCSITE_KEEPALIVE_SECONDS": "0.5",
        "CCSITE_ALLOW_EMPTY_LENGTH": "0",
        "CCSITE_HEADER_TIMEOUT": "1",
        "CCSITE_BODY_TIMEOUT": "1",
        "CCSITE_IDLE_CONNECTION_TIMEOUT": "2",
    }
    with daphne_process(port=free_port(), env=env) as process:
        yield process


def _address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 80


def _read_until_closed(sock: socket.socket, limit: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection, and when it closed."""
    started, data = time.monotonic(), b""
    sock.settimeout(limit)
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return data, time.monotonic() - started
        data += chunk


# Empty length, failing closed on request ---------------------------------------------------


def test_fail_closed_empty_length_is_a_502_the_sdks_do_not_retry(live, strict_gateway):
    response = httpx.post(
        f"{strict_gateway.url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {live.key}"},
        json={"model": MODEL, "messages": [{"role": "user", "content": EMPTY_LENGTH}]},
        timeout=30,
    )
    assert response.status_code == 502
    assert response.headers["x-should-retry"] == "false"
    assert response.json()["error"]["code"] == "empty_output_at_length"

    before = len(live.sim_requests())
    sdk = openai.OpenAI(base_url=f"{strict_gateway.url}/v1", api_key=live.key, max_retries=2)
    with pytest.raises(openai.APIStatusError) as raised:
        sdk.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": EMPTY_LENGTH}])
    assert raised.value.status_code == 502
    assert len(live.sim_requests()) == before + 1  # the SDK obeyed x-should-retry: false


def test_fail_closed_empty_length_stream_ends_with_an_error_chunk(live, strict_gateway):
    response = httpx.post(
        f"{strict_gateway.url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {live.key}"},
        json={"model": MODEL, "stream": True, "messages": [{"role": "user", "content": EMPTY_LENGTH}]},
        timeout=30,
    )
    chunks = check_openai_sse(response.content, expect_error=True)
    assert chunks[-1]["error"]["code"] == "empty_output_at_length"


# Header, body and idle deadlines -----------------------------------------------------------


def test_headers_sent_one_byte_at_a_time_get_a_408_and_the_connection_closes(strict_gateway):
    request = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 200
    with socket.create_connection(_address(strict_gateway.url), timeout=10) as sock:
        started = time.monotonic()
        closed = False
        for byte in request:
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                closed = True
                break
            readable, _, _ = select.select([sock], [], [], 0.1)
            if readable:
                break
            assert time.monotonic() - started < 5, "the server kept reading a slow request"
        data, _ = _read_until_closed(sock, 5)
    assert closed or data.startswith(b"HTTP/1.1 408")
    assert time.monotonic() - started < 4  # the 1 s header deadline, not the byte pace


def test_a_body_that_trickles_in_gets_a_408(live, strict_gateway):
    head = (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Authorization: Bearer " + live.key.encode() + b"\r\nContent-Length: 1000\r\n\r\n{"
    )
    with socket.create_connection(_address(strict_gateway.url), timeout=10) as sock:
        sock.sendall(head)
        data, closed_after = _read_until_closed(sock, 5)
    assert data.startswith(b"HTTP/1.1 408") and b"request_timeout" in data
    assert 0.5 < closed_after < 4


def test_an_idle_keep_alive_connection_is_closed(strict_gateway):
    with socket.create_connection(_address(strict_gateway.url), timeout=10) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        first = sock.recv(65536)
        assert first.startswith(b"HTTP/1.1 200")
        _, closed_after = _read_until_closed(sock, 8)
    assert closed_after < 6  # CCSITE_IDLE_CONNECTION_TIMEOUT=2, not Twisted's 12 hours


def test_a_stream_longer_than_the_deadlines_is_not_cut(live, strict_gateway):
    response = httpx.post(
        f"{strict_gateway.url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {live.key}"},
        json={
            "model": MODEL,
            "stream": True,
            "messages": [{"role": "user", "content": "[sim:paced deltas=6 delay_ms=500]"}],
        },
        timeout=30,
    )
    assert response.status_code == 200
    check_openai_sse(response.content)


# The listen backlog ------------------------------------------------------------------------


def _somaxconn() -> int:
    return int(Path("/proc/sys/net/core/somaxconn").read_text())


@pytest.mark.skipif(shutil.which("ss") is None, reason="needs ss (iproute2) to read the listen backlog")
def test_the_gateway_listens_with_a_large_backlog(live_gateway):
    port = _address(live_gateway.url)[1]
    out = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True, check=True)
    backlog = int(out.stdout.split()[2])  # Send-Q of a listening socket is its backlog
    assert backlog == min(2048, _somaxconn())


def test_a_burst_of_400_connections_is_accepted_without_drops(live_gateway):
    """A dropped SYN costs the client a 1 s retransmit: every connection must be up at once."""
    address = _address(live_gateway.url)
    sockets = []
    try:
        started = time.monotonic()
        for _ in range(400):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setblocking(False)
            sock.connect_ex(address)
            sockets.append(sock)
        pending = set(sockets)
        while pending and time.monotonic() - started < 5:
            _, writable, _ = select.select([], list(pending), [], 0.5)
            pending -= set(writable)
        elapsed = time.monotonic() - started
        assert not pending and elapsed < 0.9, (len(pending), elapsed)
        for sock in sockets:
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
            sock.setblocking(True)
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        for sock in sockets:
            sock.settimeout(20)
            assert sock.recv(12) == b"HTTP/1.1 200"
    finally:
        for sock in sockets:
            sock.close()
