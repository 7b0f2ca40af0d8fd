"""Billing snapshots from the simulator, daily_burn ordering by them, the low-balance webhook,
and ``manage.py credentials``."""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, HTTPServer

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.core.management import CommandError, call_command

from accounts.models import UpstreamCredential
from ccsite.sharedstate import MemoryState, reset_shared_state
from proxy import billing, routing
from proxy.outcomes import RequestOutcome
from proxy.translate.wire import UpstreamRequest
from proxy.upstream.client import close_upstream_client
from tests.factories import make_credential

pytestmark = pytest.mark.django_db(transaction=True)
MODEL = "deepseek/deepseek-v4-flash"


@pytest.fixture
async def sim(simulator, settings):
    settings.CC_UPSTREAM_BASE_URL = simulator.url
    settings.CCSITE_CREDENTIAL_CACHE_SECONDS = 0
    settings.CCSITE_ROUTING_POLICY = "auto"
    reset_shared_state(MemoryState())
    routing.pool.invalidate()
    await close_upstream_client()
    yield simulator
    await routing.settle()
    await close_upstream_client()
    reset_shared_state(None)


async def key_with(simulator, label: str, **billing_behaviour: float) -> UpstreamCredential:
    secret = f"user_bill_{uuid.uuid4().hex[:16]}"
    body = {"key": secret, **billing_behaviour}
    async with httpx.AsyncClient(timeout=10) as client:
        (await client.post(f"{simulator.url}/_sim/keys", json=body)).raise_for_status()
    return await sync_to_async(make_credential)(label=label, api_key=secret)


async def test_refresh_stores_snapshots_and_daily_burn_orders_keys_by_them(sim):
    # a: 100 credits over 20 days (5/day); b: 30 over 2 days (15/day); c: 60 over 30 days (2/day).
    a = await key_with(sim, "a-roomy", credits=100, period_days=20)
    b = await key_with(sim, "b-urgent", credits=30, period_days=2)
    c = await key_with(sim, "c-idle", credits=60, period_days=30)
    results = await billing.refresh_billing()
    assert results == {"a-roomy": "", "b-urgent": "", "c-idle": ""}
    saved = await UpstreamCredential.objects.aget(pk=b.pk)
    assert saved.billing["credits_remaining"] == 30.0
    assert saved.billing["plan"] == "individual-max" and saved.billing["status"] == "active"
    assert saved.billing["usage"]["total_count"] == 0
    assert saved.billing_refreshed_at is not None
    used = []
    for _ in range(3):
        outcome = RequestOutcome("openai", None, MODEL, MODEL, False)
        request = UpstreamRequest(
            model=MODEL, system="", messages=[{"role": "user", "content": [{"type": "text", "text": "hi"}]}]
        )
        stream = await routing.open_upstream(None, request, outcome)
        await stream.aclose()
        used.append(outcome.credential_label)
    assert used == ["b-urgent"] * 3  # auto = daily_burn once billing is known
    assert {a.pk, c.pk}  # the others stay eligible as fallbacks


async def test_a_failed_refresh_is_recorded_not_fatal(sim, settings):
    await key_with(sim, "broken")
    settings.CC_UPSTREAM_BASE_URL = "http://127.0.0.1:9"  # nothing listens there
    results = await billing.refresh_billing()
    assert "ConnectError" in results["broken"]
    saved = await UpstreamCredential.objects.aget(label="broken")
    assert "ConnectError" in saved.billing["error"] and saved.billing_refreshed_at is None


class _Hook(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self):  # noqa: N802 (http.server's name)
        length = int(self.headers["Content-Length"])
        _Hook.received.append(json.loads(self.rfile.read(length)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        return None


@pytest.fixture
def webhook():
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    _Hook.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook", _Hook.received
    server.shutdown()
    server.server_close()


async def test_low_balance_webhook_fires_once_per_crossing(sim, settings, webhook):
    url, received = webhook
    settings.CCSITE_LOW_BALANCE_WEBHOOK_URL = url
    settings.CCSITE_LOW_BALANCE_THRESHOLD = 20.0
    secret = f"user_bill_{uuid.uuid4().hex[:16]}"
    await sync_to_async(make_credential)(label="low", api_key=secret)

    async def with_credits(value: float) -> None:
        async with httpx.AsyncClient(timeout=10) as client:
            body = {"key": secret, "credits": value}
            (await client.post(f"{sim.url}/_sim/keys", json=body)).raise_for_status()
        await billing.refresh_billing()

    await with_credits(50)
    await with_credits(10)  # crossed: one alert
    await with_credits(5)  # still below: none
    await with_credits(40)  # back above
    await with_credits(15)  # crossed again: one more
    assert [(hook["credential"], hook["credits_remaining"]) for hook in received] == [
        ("low", 10.0),
        ("low", 15.0),
    ]
    assert received[0]["event"] == "credential.low_balance" and received[0]["threshold"] == 20.0
    assert secret not in json.dumps(received)


def test_credentials_command_lists_enables_and_disables(db, capsys):
    make_credential(label="one", api_key="user_cmd_0000000000000001", max_concurrent=2)
    make_credential(label="two", api_key="user_cmd_0000000000000002")
    call_command("credentials", "disable", "two")
    UpstreamCredential.objects.filter(label="one").update(last_error="429: usage window", cooldown_reason="x")
    capsys.readouterr()
    call_command("credentials", "list", "--json")
    listed = {entry["label"]: entry for entry in json.loads(capsys.readouterr().out)}
    assert listed["two"]["state"] == "disabled" and listed["one"]["state"] == "ready"
    assert listed["one"]["max_concurrent"] == 2 and listed["one"]["last_error"] == "429: usage window"
    assert listed["one"]["key"] == "…0001" and "user_cmd" not in json.dumps(listed)
    call_command("credentials", "enable", "two")
    call_command("credentials", "list")
    table = capsys.readouterr().out
    assert "two" in table and "disabled" not in table
    with pytest.raises(Exception, match="no credential labelled 'nope'"):
        call_command("credentials", "enable", "nope")


async def test_the_scheduled_refresh_runs_once_per_period_across_processes(sim, settings):
    """Two schedulers sharing one state (two gateway processes sharing Redis): one refresh per
    period between them, so the webhook and the upstream see one, not one per process."""
    settings.CCSITE_BILLING_REFRESH_SECONDS = 0.4
    await key_with(sim, "scheduled", credits=80, period_days=10)
    async with httpx.AsyncClient(timeout=10) as client:
        await client.delete(f"{sim.url}/_sim/requests")
        schedulers = [asyncio.create_task(billing._refresh_forever()) for _ in range(2)]
        await asyncio.sleep(1.0)  # periods start at 0, 0.4 and 0.8 s
        for task in schedulers:
            task.cancel()
        await asyncio.gather(*schedulers, return_exceptions=True)
        records = (await client.get(f"{sim.url}/_sim/requests", params={"path": "/alpha/whoami"})).json()
    assert 2 <= len(records["requests"]) <= 3
    saved = await UpstreamCredential.objects.aget(label="scheduled")
    assert saved.billing["credits_remaining"] == 80.0


async def test_the_scheduled_refresh_is_off_at_zero(sim, settings):
    settings.CCSITE_BILLING_REFRESH_SECONDS = 0
    await asyncio.wait_for(billing._refresh_forever(), timeout=1)  # returns at once


def test_credentials_command_shows_and_sets_the_routing_policy(db, capsys, settings):
    from proxy import routing_settings

    settings.CCSITE_ROUTING_POLICY = "round_robin"
    try:
        call_command("credentials", "policy")
        assert "routing policy: round_robin (the server setting" in capsys.readouterr().out
        call_command("credentials", "policy", "daily_burn")
        assert "routing policy: daily_burn (set by an operator)" in capsys.readouterr().out
        assert routing_settings.policy() == "daily_burn"  # this process at once (bump)
        call_command("credentials", "policy", "default")
        assert "routing policy: round_robin (the server setting" in capsys.readouterr().out
        with pytest.raises(CommandError):
            call_command("credentials", "policy", "fastest")
    finally:
        routing_settings.forget()
