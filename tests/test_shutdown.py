"""Graceful shutdown: the hook registry, and SIGTERM to a real Daphne process mid-stream."""

from __future__ import annotations

import json
import signal
import subprocess
import time

import httpx
import pytest

from ccsite import shutdown
from proxy.upstream.simulator.scenarios import expected_text
from tests.factories import make_client_key, make_credential
from tests.live import daphne_process, free_port

MODEL = "deepseek/deepseek-v4-flash"


async def test_hooks_run_once_in_order_and_a_failing_hook_does_not_stop_the_others(monkeypatch):
    monkeypatch.setattr(shutdown, "_hooks", [])
    ran: list[str] = []

    async def flush_async() -> None:
        ran.append("async")

    def broken() -> None:
        raise RuntimeError("boom")

    shutdown.on_shutdown(lambda: ran.append("first"))
    shutdown.on_shutdown(broken)
    shutdown.on_shutdown(flush_async)
    await shutdown.run_shutdown_hooks()
    await shutdown.run_shutdown_hooks()
    assert ran == ["first", "async"]


async def test_in_flight_counts_open_requests_and_closes_connections_while_draining(monkeypatch):
    monkeypatch.setattr(shutdown, "in_flight", shutdown.InFlight())
    sent: list[dict] = []

    async def app(scope, receive, send):
        assert shutdown.in_flight.count == 1
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"connection", b"keep-alive")]}
        )

    async def record(message):
        sent.append(message)

    wrapped = shutdown.count_in_flight(app)
    await wrapped({"type": "http"}, None, record)
    assert shutdown.in_flight.count == 0 and sent[0]["headers"] == [(b"connection", b"keep-alive")]
    shutdown.in_flight.draining = True
    await wrapped({"type": "http"}, None, record)
    assert sent[1]["headers"] == [(b"connection", b"close")]
    assert await shutdown.in_flight.wait_idle(0.1)


def _stream_request(url: str, key: str, directive: str) -> httpx.Request:
    body = {"model": MODEL, "stream": True, "messages": [{"role": "user", "content": directive}]}
    return httpx.Request(
        "POST", f"{url}/v1/chat/completions", headers={"Authorization": f"Bearer {key}"}, json=body
    )


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_sigterm_during_a_stream_lets_it_finish_then_the_process_exits(simulator):
    make_credential(label="sim", api_key="user_shutdown_0000000000001")
    _, key = make_client_key()
    env = {"CC_UPSTREAM_BASE_URL": simulator.url, "CCSITE_SHUTDOWN_GRACE_SECONDS": "30"}
    directive = "[sim:text deltas=40 delay_ms=50]"  # a two-second stream
    with daphne_process(port=free_port(), env=env) as gateway, httpx.Client(timeout=30) as client:
        response = client.send(_stream_request(gateway.url, key, directive), stream=True)
        lines = response.iter_lines()
        first = next(line for line in lines if line.startswith("data: "))
        gateway.process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        rest = list(lines)
        # The process stopped accepting while the stream was still open.
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{gateway.url}/health", timeout=2)
        response.close()
        assert gateway.process.wait(timeout=15) == 0
        exited_after = time.monotonic() - signalled

    assert response.status_code == 200 and [line for line in rest if line][-1] == "data: [DONE]"
    chunks = [json.loads(line[6:]) for line in [first, *rest] if line.startswith("data: {")]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == expected_text(directive)
    assert exited_after < 10


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_the_grace_period_bounds_how_long_a_stalled_stream_delays_the_exit(simulator):
    make_credential(label="sim", api_key="user_shutdown_0000000000002")
    _, key = make_client_key()
    env = {"CC_UPSTREAM_BASE_URL": simulator.url, "CCSITE_SHUTDOWN_GRACE_SECONDS": "1"}
    with daphne_process(port=free_port(), env=env) as gateway, httpx.Client(timeout=30) as client:
        response = client.send(_stream_request(gateway.url, key, "[sim:stall after=1]"), stream=True)
        assert response.status_code == 200
        gateway.process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        try:
            returncode = gateway.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pytest.fail("the process did not exit after its grace period")
        response.close()
    assert returncode == 0 and 0.9 < time.monotonic() - signalled < 8
