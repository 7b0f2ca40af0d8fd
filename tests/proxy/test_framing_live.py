"""Raw-socket framing of the gateway's answers: Content-Length on every whole answer (errors
included), no chunks with it, heads alone for HEAD, several requests on one connection."""

from __future__ import annotations

import json
import socket
from urllib.parse import urlparse

import pytest

pytestmark = [pytest.mark.live]

MODEL = "deepseek/deepseek-v4-flash"


def connect(live) -> socket.socket:
    url = urlparse(live.url)
    sock = socket.create_connection((url.hostname, url.port), timeout=20)
    return sock


def request(method: str, path: str, key: str | None, body: bytes | None = None, extra: str = "") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: test", "anthropic-version: 2023-06-01"]
    if key:
        lines.append(f"Authorization: Bearer {key}")
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    raw = ("\r\n".join(lines) + "\r\n" + extra + "\r\n").encode()
    return raw + (body or b"")


class Reader:
    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.buffer = sock, b""

    def _more(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise EOFError(self.buffer)
        self.buffer += data

    def head(self) -> tuple[int, dict[str, str]]:
        while b"\r\n\r\n" not in self.buffer:
            self._more()
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        status_line, *lines = head.decode("latin1").split("\r\n")
        headers: dict[str, str] = {}
        for line in lines:
            name, _, value = line.partition(":")
            assert name.lower() not in headers, f"repeated {name}"
            headers[name.lower()] = value.strip()
        return int(status_line.split()[1]), headers

    def exactly(self, n: int) -> bytes:
        while len(self.buffer) < n:
            self._more()
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def chunked(self) -> bytes:
        body = b""
        while True:
            while b"\r\n" not in self.buffer:
                self._more()
            size_line, self.buffer = self.buffer.split(b"\r\n", 1)
            size = int(size_line, 16)
            data = self.exactly(size + 2)
            assert data.endswith(b"\r\n")
            if size == 0:
                return body
            body += data[:-2]

    def response(self, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
        status, headers = self.head()
        if method == "HEAD":
            return status, headers, b""
        if "content-length" in headers:
            assert "transfer-encoding" not in headers
            return status, headers, self.exactly(int(headers["content-length"]))
        assert headers.get("transfer-encoding") == "chunked", headers
        return status, headers, self.chunked()


def chat(stream: bool = False, text: str = "hello") -> bytes:
    return json.dumps(
        {"model": MODEL, "stream": stream, "messages": [{"role": "user", "content": text}]}
    ).encode()


def cases(live):
    return [
        ("POST", "/v1/chat/completions", live.key, chat(), 200),
        ("POST", "/v1/chat/completions", "sk-not-a-key", chat(), 401),
        ("POST", "/v1/chat/completions", live.key, b"{not json", 400),
        ("GET", "/v1/models", live.key, None, 200),
        ("GET", "/v1/no-such-thing", live.key, None, 404),
        ("POST", "/v1/chat/completions", live.key, chat(stream=True), 200),
        ("POST", "/v1/chat/completions", live.key, chat(), 200),
    ]


def test_keep_alive_one_at_a_time(live):
    sock = connect(live)
    reader = Reader(sock)
    for method, path, key, body, status in cases(live):
        sock.sendall(request(method, path, key, body))
        got, headers, content = reader.response(method)
        assert got == status, (path, content)
        if "content-length" in headers:
            assert int(headers["content-length"]) == len(content)
        if body is not None and b'"stream": true' in body:
            assert headers.get("transfer-encoding") == "chunked"
            assert content.rstrip().endswith(b"data: [DONE]")
        else:
            assert "content-length" in headers, (path, headers)
    sock.close()


def test_pipelined(live):
    sock = connect(live)
    reader = Reader(sock)
    all_cases = cases(live)
    sock.sendall(b"".join(request(m, p, k, b) for m, p, k, b, _ in all_cases))
    for method, path, _key, _body, status in all_cases:
        got, headers, content = reader.response(method)
        assert got == status, (path, content)
    sock.close()


def test_head_then_get_on_one_connection(live):
    sock = connect(live)
    reader = Reader(sock)
    for method in ("HEAD", "GET", "HEAD", "GET"):
        sock.sendall(request(method, "/v1/models", live.key))
        got, headers, content = reader.response(method)
        assert got in (200, 405), (method, got, headers)
        if method == "GET":
            assert int(headers["content-length"]) == len(content)
    sock.settimeout(0.5)
    try:
        leftover = sock.recv(65536)
    except TimeoutError:
        leftover = b""
    assert leftover == b""
    sock.close()


def test_head_on_a_post_path(live):
    sock = connect(live)
    reader = Reader(sock)
    for method in ("HEAD", "GET"):
        sock.sendall(request(method, "/v1/chat/completions", live.key))
        got, headers, content = reader.response(method)
        print(method, got, headers, content[:200])
        if method == "GET" and "content-length" in headers:
            assert int(headers["content-length"]) == len(content)
    sock.close()


def test_disconnect_right_after_sending_then_serve_again(live):
    for body in (chat(), chat(stream=True)):
        sock = connect(live)
        sock.sendall(request("POST", "/v1/chat/completions", live.key, body))
        sock.close()
    sock = connect(live)
    reader = Reader(sock)
    sock.sendall(request("POST", "/v1/chat/completions", live.key, chat()))
    got, headers, content = reader.response()
    assert got == 200 and int(headers["content-length"]) == len(content)
    sock.close()


@pytest.mark.django_db(transaction=True)
def test_every_request_leaves_one_log_row_whatever_the_client_does(live):
    import time

    from accounts.models import ClientKey
    from usage.models import RequestLog

    key = ClientKey.objects.get(prefix=live.key[:16])
    sent = 0
    modes = ["whole", "after-send", "after-head", "after-first"]
    texts = [
        "[sim:long deltas=400]",
        "[sim:error-retryable after=1]",
        "[sim:error-fatal after=1]",
        "[sim:abort after=1]",
    ]
    for mode, text in [(m, t) for m in modes for t in texts]:
        for stream in (True, False):
            sock = connect(live)
            body = chat(stream=stream, text=text)
            sock.sendall(request("POST", "/v1/chat/completions", live.key, body))
            sent += 1
            reader = Reader(sock)
            if mode == "after-send":
                sock.close()
                continue
            status, headers = reader.head()
            if mode == "after-head":
                sock.close()
                continue
            if mode == "after-first":
                while len(reader.buffer) < 10:
                    reader._more()
                sock.close()
                continue
            if "content-length" in headers:
                reader.exactly(int(headers["content-length"]))
            else:
                reader.chunked()
            sock.close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        rows = list(
            RequestLog.objects.filter(client_key_id=key.id).values_list("request_id", "outcome", "stream")
        )
        if len(rows) >= sent:
            break
        time.sleep(0.1)
    time.sleep(0.5)
    rows = list(
        RequestLog.objects.filter(client_key_id=key.id).values_list("request_id", "outcome", "stream")
    )
    print(rows)
    assert len(rows) == sent and len({r[0] for r in rows}) == sent


@pytest.mark.parametrize("version", ["HTTP/1.1", "HTTP/1.0"])
def test_large_whole_and_streamed_bodies(live, version):
    for stream in (False, True, False):
        sock = connect(live)
        raw = request(
            "POST", "/v1/chat/completions", live.key, chat(stream=stream, text="[sim:long deltas=20000]")
        )
        raw = raw.replace(b"HTTP/1.1", version.encode(), 1)
        sock.sendall(raw)
        reader = Reader(sock)
        status, headers = reader.head()
        assert status == 200, headers
        if "content-length" in headers:
            assert "transfer-encoding" not in headers
            body = reader.exactly(int(headers["content-length"]))
            assert len(body) > 100_000 and body.endswith(b"}")
            json.loads(body)
        elif version == "HTTP/1.1":
            body = reader.chunked()
            assert body.rstrip().endswith(b"data: [DONE]")
        else:
            try:
                while True:
                    reader._more()
            except EOFError:
                pass
            assert reader.buffer.rstrip().endswith(b"data: [DONE]")
            body = reader.buffer
        assert not stream or b"data: [DONE]" in body
        sock.settimeout(1)
        if version == "HTTP/1.0":
            assert sock.recv(10) == b""
        sock.close()
