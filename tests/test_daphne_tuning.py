"""Daphne forgets a finished request at once (ccsite/daphne_tuning.py), checked on Daphne's own
Server class in a child interpreter (importing daphne.server installs Twisted's reactor)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

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


def _kept(mode: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, mode],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_a_finished_request_is_forgotten_when_its_application_ends():
    # Stock Daphne keeps all three until its once-a-second sweep.
    assert _kept("stock") == "failed,finished,open"
    # Tuned: the finished one is gone; one still open, or one that failed (the sweep logs
    # its error), stays for the sweep.
    assert _kept("tuned") == "failed,open"
