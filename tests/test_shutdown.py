"""Graceful shutdown: the hook registry, and SIGTERM to a real Daphne process mid-stream."""

from __future__ import annotations

import json
import signal
import subprocess
import time
import uuid

import httpx
import pytest
import redis

from accounts.services import limits_update
from ccsite import shutdown
from proxy.upstream.simulator.scenarios import expected_text
from tests.factories import make_client_key, make_credential
from tests.live import daphne_process, free_port
from usage.models import RequestLog

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


def _gateway_env(simulator, redis_server, grace: str) -> dict[str, str]:
    return {
        "CC_UPSTREAM_BASE_URL": simulator.url,
        "CCSITE_SHUTDOWN_GRACE_SECONDS": grace,
        "REDIS_URL": redis_server.url,
        # Rows are written by the writer thread, and only its shutdown flush can write them here.
        "CCSITE_REQUEST_LOG_BACKGROUND": "1",
        "CCSITE_REQUEST_LOG_FLUSH_SECONDS": "600",
    }


def _capped(suffix: str) -> tuple[int, str, str]:
    """A credential and a client key, each allowed one request at once: (credential id, key
    prefix, key secret)."""
    credential = make_credential(label=f"sim-{suffix}", api_key=f"user_shutdown_{suffix}", max_concurrent=1)
    row, key = make_client_key()
    limits_update(target=row, changes={"concurrent_limit": 1})
    return credential.pk, row.prefix, key


def _slots_held(redis_url: str, credential_id: int, key_prefix: str) -> int:
    """Concurrency slots still held in Redis (routing's and the key limit's), expired ones too."""
    client = redis.Redis.from_url(redis_url)
    try:
        return client.zcard(f"ccsite:route:slots:{credential_id}") + client.zcard(
            f"ccsite:limits:slots:key:{key_prefix}"
        )
    finally:
        client.close()


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_sigterm_during_a_stream_lets_it_finish_then_the_process_exits(simulator, redis_server):
    credential_id, prefix, key = _capped(uuid.uuid4().hex[:16])
    directive = "[sim:text deltas=40 delay_ms=50]"  # a two-second stream
    env = _gateway_env(simulator, redis_server, "30")
    with daphne_process(port=free_port(), env=env) as gateway, httpx.Client(timeout=30) as client:
        response = client.send(_stream_request(gateway.url, key, directive), stream=True)
        lines = response.iter_lines()
        first = next(line for line in lines if line.startswith("data: "))
        assert _slots_held(redis_server.url, credential_id, prefix) == 2
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
    # Its row was written by the shutdown flush, and both slots it held were given back.
    row = RequestLog.objects.get(request_id=response.headers["x-request-id"])
    assert (row.outcome, row.http_status, row.stream) == ("ok", 200, True)
    assert row.output_tokens > 0
    assert _slots_held(redis_server.url, credential_id, prefix) == 0


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_the_grace_period_bounds_how_long_a_stalled_stream_delays_the_exit(simulator, redis_server):
    credential_id, prefix, key = _capped(uuid.uuid4().hex[:16])
    env = _gateway_env(simulator, redis_server, "1")
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
    # Cancelled at the end of the grace period: still logged, as cancelled, its slots given back.
    row = RequestLog.objects.get(request_id=response.headers["x-request-id"])
    assert row.outcome == "cancelled" and row.stream
    assert _slots_held(redis_server.url, credential_id, prefix) == 0


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_sigkill_loses_at_most_the_last_flush_interval_and_its_slots_expire(simulator, redis_server):
    credential_id, prefix, key = _capped(uuid.uuid4().hex[:16])
    env = {
        **_gateway_env(simulator, redis_server, "30"),
        "CCSITE_REQUEST_LOG_FLUSH_SECONDS": "0.2",
        "CCSITE_ROUTING_SLOT_TTL": "2",
        "CCSITE_LIMIT_SLOT_SECONDS": "2",
    }
    with (
        daphne_process(port=free_port(), env=env) as doomed,
        daphne_process(port=free_port(), env=env) as survivor,
        httpx.Client(timeout=30) as client,
    ):
        finished = []
        for _ in range(3):
            response = client.send(_stream_request(doomed.url, key, "[sim:text deltas=3]"))
            assert response.status_code == 200, response.text
            finished.append(response.headers["x-request-id"])
            time.sleep(0.1)  # its slots are given back just after its last byte
        time.sleep(0.6)  # longer than one flush interval
        stream = client.send(_stream_request(doomed.url, key, "[sim:stall after=1]"), stream=True)
        assert stream.status_code == 200
        doomed.process.send_signal(signal.SIGKILL)
        doomed.process.wait(timeout=10)
        killed_at = time.monotonic()
        stream.close()
        # The slots the killed process held still count, until they expire.
        held = client.send(_stream_request(survivor.url, key, "[sim:text deltas=3]"))
        assert held.status_code == 429
        while (status := client.send(_stream_request(survivor.url, key, "hi")).status_code) != 200:
            assert status == 429 and time.monotonic() - killed_at < 6
            time.sleep(0.2)
    # Rows finished more than a flush interval before the kill were written.
    assert RequestLog.objects.filter(request_id__in=finished).count() == 3
    assert _slots_held(redis_server.url, credential_id, prefix) <= 2  # only expired ones remain
