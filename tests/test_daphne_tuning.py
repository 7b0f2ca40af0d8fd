"""Daphne forgets a finished request at once (ccsite/daphne_tuning.py), checked on Daphne's own
Server class in a child interpreter (importing daphne.server installs Twisted's reactor)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = textwrap.dedent(
    """
    import asyncio, sys
    from daphne.server import Server
    from ccsite import daphne_tuning

    tuned = sys.argv[1] == "tuned"
    if tuned:
        assert daphne_tuning.install()
        assert not daphne_tuning.install()  # once

    async def ok_app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})

    async def failing_app(scope, receive, send):
        raise RuntimeError("boom")

    class Protocol:  # what Daphne's Server needs of a protocol here
        pass

    async def main():
        server = Server(application=ok_app, endpoints=["tcp:port=0:interface=127.0.0.1"])  # never listens
        server.connections = {}  # as Server.run() starts it
        finished, open_, failed = Protocol(), Protocol(), Protocol()
        for protocol in (finished, open_):
            server.protocol_connected(protocol)
            server.create_application(protocol, {"type": "http"})
        server.application = failing_app
        server.protocol_connected(failed)
        server.create_application(failed, {"type": "http"})
        server.protocol_disconnected(finished)  # its response went before the app returned
        server.protocol_disconnected(failed)
        await asyncio.sleep(0.05)
        kept = sorted(name for name, p in (("finished", finished), ("open", open_), ("failed", failed))
                      if p in server.connections)
        print(",".join(kept))

    asyncio.run(main())
    """
)


def _child_output(script: str, *args: str) -> str:
    """What ``python -c script args`` prints, in the project's root."""
    result = subprocess.run(
        [sys.executable, "-c", script, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def _kept(mode: str) -> str:
    return _child_output(SCRIPT, mode)


def test_a_finished_request_is_forgotten_when_its_application_ends():
    # Stock Daphne keeps all three until its once-a-second sweep.
    assert _kept("stock") == "failed,finished,open"
    # Tuned: the finished one is gone; one still open, or one that failed (the sweep logs
    # its error), stays for the sweep.
    assert _kept("tuned") == "failed,open"


# One Daphne HTTP channel over a transport that records each write, for the scripts below.
CHANNEL_PRELUDE = textwrap.dedent(
    """
    import asyncio, json, sys
    from daphne.http_protocol import HTTPFactory
    from daphne.server import Server
    from twisted.internet.address import IPv4Address
    from twisted.internet.testing import StringTransport

    class Recording(StringTransport):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.writes = []

        def write(self, data):
            self.writes.append(bytes(data))
            super().write(data)

        def writeSequence(self, data):
            self.write(b"".join(data))

    def recording_channel(app):
        server = Server(application=app, endpoints=["tcp:port=0:interface=127.0.0.1"])  # never listens
        server.connections = {}
        server.root_path = ""
        server.request_buffer_size = 8192
        server.proxy_forwarded_address_header = None
        server.action_logger = None
        channel = HTTPFactory(server).buildProtocol(IPv4Address("TCP", "127.0.0.1", 40000))
        transport = Recording(
            hostAddress=IPv4Address("TCP", "127.0.0.1", 8000),
            peerAddress=IPv4Address("TCP", "127.0.0.1", 40000),
        )
        channel.makeConnection(transport)
        return channel, transport
    """
)


def _run_child(script: str, *args: str) -> Any:
    """What the script (after CHANNEL_PRELUDE) prints as JSON."""
    return json.loads(_child_output(CHANNEL_PRELUDE + script, *args))


REQUEST_SCRIPT = textwrap.dedent(
    """
    from twisted.internet import defer
    from ccsite import daphne_tuning

    if sys.argv[1] == "tuned":
        assert daphne_tuning.install()
    request_bytes = sys.argv[2].encode("latin1")
    seen = {}

    async def app(scope, receive, send):
        seen["scope"] = scope
        seen["message"] = await receive()

    async def main():
        channel, transport = recording_channel(app)
        made = []
        original_init = defer.Deferred.__init__

        def counted_init(self, *args, **kwargs):
            made.append(self)
            original_init(self, *args, **kwargs)

        defer.Deferred.__init__ = counted_init
        channel.dataReceived(request_bytes)
        defer.Deferred.__init__ = original_init
        await asyncio.sleep(0.05)
        scope = seen.get("scope")
        if scope is not None:
            scope = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in scope.items()}
            scope["headers"] = [[n.decode(), v.decode()] for n, v in scope["headers"]]
            scope.pop("asgi", None)
        message = seen.get("message")
        if message is not None:
            message = {**message, "body": message["body"].decode()}
        wire = transport.value().decode("latin1")[:12]
        print(json.dumps({"scope": scope, "message": message, "wire": wire, "deferreds": len(made)}))

    asyncio.run(main())
    """
)


def _served(mode: str, raw: bytes) -> dict:
    return _run_child(REQUEST_SCRIPT, mode, raw.decode("latin1"))  # type: ignore[no-any-return]


PLAIN_REQUEST = (
    b"POST /v1/chat%20x/completions?a=1&b=%C3 HTTP/1.1\r\nHost: gw.example\r\n"
    b"Authorization: Bearer k\r\nX_Smuggled: 1\r\nDaphne-Root-Path: /sub\r\nX-Multi: 1\r\nX-Multi: 2\r\n"
    b'Content-Length: 7\r\n\r\n{"a":1}'
)


def test_a_plain_request_starts_its_application_with_daphnes_own_scope_and_body():
    stock, tuned = _served("stock", PLAIN_REQUEST), _served("tuned", PLAIN_REQUEST)
    # Daphne's own process makes Deferreds for every request; the tuned one makes none.
    assert stock.pop("deferreds") > 0 and tuned.pop("deferreds") == 0
    assert tuned == stock
    scope = tuned["scope"]
    assert scope["path"] == "/v1/chat x/completions"
    assert scope["raw_path"] == "/v1/chat%20x/completions"
    assert scope["query_string"] == "a=1&b=%C3"
    assert scope["root_path"] == "/sub"
    assert scope["client"] == ["127.0.0.1", 40000] and scope["server"] == ["127.0.0.1", 8000]
    names = [name for name, _ in scope["headers"]]
    assert "x_smuggled" not in names and "daphne-root-path" not in names  # as Daphne drops them
    assert [value for name, value in scope["headers"] if name == "x-multi"] == ["1", "2"]
    assert tuned["message"] == {"type": "http.request", "body": '{"a":1}', "more_body": False}


def test_a_request_daphne_refuses_is_refused_the_same_way():
    bad_name = b"GET / HTTP/1.1\r\nHost: a\r\nBad(Name): 1\r\n\r\n"
    bad_value = b"GET / HTTP/1.1\r\nHost: a\r\nX-Ok: a\x0bb\r\n\r\n"
    for raw in (bad_name, bad_value):
        stock, tuned = _served("stock", raw), _served("tuned", raw)
        stock.pop("deferreds"), tuned.pop("deferreds")
        assert tuned == stock
        assert tuned["scope"] is None and tuned["wire"].startswith("HTTP/1.1 400")


RESPONSE_SCRIPT = textwrap.dedent(
    """
    from ccsite import daphne_tuning, twisted_tuning

    if sys.argv[1] == "tuned":
        assert twisted_tuning.install()
        assert daphne_tuning.install()

    async def app(scope, receive, send):
        await receive()
        head = [(b"content-type", b"text/plain")]
        await send({"type": "http.response.start", "status": 200, "headers": head})
        await send({"type": "http.response.body", "body": b"events", "more_body": True})
        await send({"type": "http.response.body", "body": b"end"})

    async def main():
        channel, transport = recording_channel(app)
        channel.dataReceived(b"GET / HTTP/1.1\\r\\nHost: a\\r\\n\\r\\n")
        await asyncio.sleep(0.05)
        print(json.dumps([w.decode("latin1") for w in transport.writes]))

    asyncio.run(main())
    """
)


def _writes(mode: str) -> list[str]:
    return _run_child(RESPONSE_SCRIPT, mode)  # type: ignore[no-any-return]


def test_a_streamed_responses_last_chunk_leaves_with_its_end():
    stock, tuned = _writes("stock"), _writes("tuned")
    assert stock[-2:] == ["3\r\nend\r\n", "0\r\n\r\n"]  # Daphne: the last chunk, then the end
    assert tuned[-1] == "3\r\nend\r\n0\r\n\r\n"  # one write
    assert "".join(tuned).endswith("".join(stock[-2:]))
    assert "".join(tuned).split("\r\n\r\n", 1)[1] == "".join(stock).split("\r\n\r\n", 1)[1]
