"""Per-user limits end to end: a live Daphne gateway, the simulator counting what reaches it.

What the upstream saw comes from the simulator's own records (arrival and end of each request),
so "never more than N in flight" is measured where it matters.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest

from accounts.models import ClientKey
from tests.live import daphne_process, free_port
from usage.models import RequestLog

pytestmark = [pytest.mark.live]

MODEL = "deepseek/deepseek-v4-flash"


def chat_body(text: str = "hi", **extra: Any) -> dict[str, Any]:
    return {"model": MODEL, "messages": [{"role": "user", "content": text}], **extra}


def peak_in_flight(records: list[dict[str, Any]]) -> int:
    """The most requests the simulator was serving at one moment (from its own timestamps)."""
    edges = []
    for record in records:
        edges.append((record["received_at"], 1))
        edges.append((record["ended_at"] or time.time(), -1))
    peak = current = 0
    for _, step in sorted(edges, key=lambda edge: (edge[0], edge[1])):
        current += step
        peak = max(peak, current)
    return peak


async def fire(
    live, count: int, body: dict[str, Any], *, path: str = "/v1/chat/completions", spacing: float = 0.0
) -> list[httpx.Response]:
    """``count`` requests at once (or started ``spacing`` seconds apart), all awaited."""
    async with httpx.AsyncClient(base_url=live.url, timeout=30) as client:
        headers = {"Authorization": f"Bearer {live.key}"}

        async def one(index: int) -> httpx.Response:
            await asyncio.sleep(index * spacing)
            return await client.post(path, json=body, headers=headers)

        return await asyncio.gather(*(one(index) for index in range(count)))


def wait_until(check, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


def test_fifty_concurrent_requests_never_exceed_a_cap_of_three(live):
    live.limit_key(concurrent_limit=3)
    responses = asyncio.run(fire(live, 50, chat_body("[sim:text first_delay_ms=300] hi")))
    statuses = [response.status_code for response in responses]
    assert set(statuses) <= {200, 429}, statuses
    served = statuses.count(200)
    assert served >= 3
    records = live.sim_requests()
    assert len(records) == served  # a refused request never reached the upstream
    assert peak_in_flight(records) <= 3
    refused = next(response for response in responses if response.status_code == 429)
    assert refused.reason_phrase == "Too Many Requests"  # not Twisted's "Unknown Status"
    assert refused.json()["error"]["code"] == "rate_limit_concurrency"
    assert "3 requests at once" in refused.json()["error"]["message"]
    assert int(refused.headers["Retry-After"]) >= 1
    # Every slot came back: three at once are served again.
    again = asyncio.run(fire(live, 3, chat_body("[sim:text first_delay_ms=100] hi")))
    assert [response.status_code for response in again] == [200, 200, 200]


def test_a_token_budget_is_not_overshot_by_fifty_concurrent_requests(live):
    budget = 2_000
    live.limit_key(budget_tokens=budget, budget_period="day")
    responses = asyncio.run(fire(live, 50, chat_body("[sim:text first_delay_ms=200 input=150] hi")))
    served = [response for response in responses if response.status_code == 200]
    refused = [response for response in responses if response.status_code != 200]
    assert served and refused
    assert {response.status_code for response in refused} == {429}
    assert refused[0].json()["error"]["code"] == "budget_exhausted"
    assert "per day" in refused[0].json()["error"]["message"]
    assert int(refused[0].headers["Retry-After"]) >= 1
    assert len(live.sim_requests()) == len(served)
    # Admission reserved each request's input estimate: the estimates of the admitted requests
    # fit in the budget, and only their reconciliation can go past it.
    used = [response.json()["usage"]["total_tokens"] for response in served]
    estimate_share = budget // len(served)
    assert all(tokens > 0 for tokens in used)
    overshoot = sum(used) - budget
    reconciliation = sum(tokens - min(tokens, estimate_share) for tokens in used)
    assert overshoot <= reconciliation
    # The budget is used up now, for every later request too.
    later = asyncio.run(fire(live, 1, chat_body()))[0]
    assert later.status_code == 429 and later.json()["error"]["code"] == "budget_exhausted"


def test_slots_are_released_after_an_upstream_error(live):
    live.limit_key(concurrent_limit=1)
    failed = asyncio.run(fire(live, 1, chat_body("[sim:http-500] hi")))[0]
    assert failed.status_code == 502
    # Routing now cools the credential that failed (a 429 of its own), so the slot is read
    # where /v1/me reads it, and the next request must not be refused for concurrency.
    wait_until(lambda: concurrent_in_use(live) == 0, timeout=3)
    after = asyncio.run(fire(live, 1, chat_body()))[0]
    assert after.status_code == 200 or after.json()["error"]["code"] != "rate_limit_concurrency"


def concurrent_in_use(live) -> int:
    me = httpx.get(f"{live.url}/v1/me", headers={"Authorization": f"Bearer {live.key}"}, timeout=10).json()
    return next(entry["used"] for entry in me["limits"] if entry["limit"] == "concurrent_requests")


def test_slots_are_released_when_the_client_disconnects(live):
    live.limit_key(concurrent_limit=1)
    # A stream that would run for 8 s; the client leaves after its first bytes.
    with httpx.stream(
        "POST",
        f"{live.url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {live.key}"},
        json=chat_body("[sim:paced deltas=20 delay_ms=400]", stream=True),
        timeout=10,
    ) as response:
        assert response.status_code == 200
        chunks = response.iter_bytes()  # kept: a dropped iterator closes the response
        next(chunks)
        busy = asyncio.run(fire(live, 1, chat_body()))[0]
        assert busy.status_code == 429  # the open stream holds the only slot
        chunks.close()
    left_at = time.monotonic()
    live.wait_for_outcome("disconnected")

    def served() -> bool:
        return asyncio.run(fire(live, 1, chat_body()))[0].status_code == 200

    wait_until(served, timeout=4)
    assert time.monotonic() - left_at < 4  # long before the abandoned stream would have ended


@pytest.mark.parametrize("surface", ["openai", "anthropic"])
def test_requests_per_minute_refuse_then_reset(live, surface):
    live.limit_key(rpm_limit=2)
    if surface == "anthropic":
        path, body = (
            "/v1/messages",
            {"model": MODEL, "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]},
        )
    else:
        path, body = "/v1/chat/completions", chat_body()
    # Start right after a minute turns, so all three requests share one window.
    time.sleep(max(0.0, 60 - time.time() % 60 + 0.05) if time.time() % 60 > 55 else 0)
    responses = asyncio.run(fire(live, 3, body, path=path))
    assert sorted(response.status_code for response in responses) == [200, 200, 429]
    refused = next(response for response in responses if response.status_code == 429)
    retry_after = int(refused.headers["Retry-After"])
    assert 1 <= retry_after <= 60
    payload = refused.json()
    if surface == "anthropic":
        assert payload["type"] == "error" and payload["error"]["type"] == "rate_limit_error"
    else:
        assert payload["error"]["type"] == "requests" and payload["error"]["code"] == "rate_limit_requests"
    assert (
        "2 requests per minute" in payload["error"]["message"] and "resets at" in payload["error"]["message"]
    )
    assert len(live.sim_requests()) == 2
    # The refusal is in the request log as "limited", with the status the client saw.
    key = ClientKey.objects.get(prefix=live.key[:16])
    wait_until(lambda: RequestLog.objects.filter(client_key_id=key.pk).count() == 3)
    limited = RequestLog.objects.get(client_key_id=key.pk, outcome="limited")
    assert (limited.http_status, limited.error_code) == (429, "rate_limit_requests")


def test_a_model_outside_the_allowed_list_gets_403_without_an_upstream_call(live):
    live.limit_key(allowed_models=["claude-*", "gpt-5.4"])
    refused = asyncio.run(fire(live, 1, chat_body()))[0]
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "model_not_allowed"
    assert "claude-*" in refused.json()["error"]["message"]
    assert "Retry-After" not in refused.headers
    assert live.sim_requests() == []
    allowed = asyncio.run(fire(live, 1, {**chat_body(), "model": "claude-sonnet-5"}))[0]
    assert allowed.status_code == 200


@pytest.fixture(scope="module")
def redis_gateway_env(redis_server, simulator) -> dict[str, str]:
    """Gateways keeping their limits in the same private Redis; concurrency slots live 1 s
    unless renewed, so a test sees both renewal and expiry."""
    return {
        "CC_UPSTREAM_BASE_URL": simulator.url,
        "CCSITE_CREDENTIAL_CACHE_SECONDS": "0",
        "REDIS_URL": redis_server.url,
        "CCSITE_LIMIT_SLOT_SECONDS": "1",
    }


@pytest.fixture(scope="module")
def two_gateways_on_one_redis(redis_gateway_env, django_db_setup, django_db_blocker):
    """Two more gateway processes sharing one Redis."""
    with (
        daphne_process(port=free_port(), env=redis_gateway_env) as first,
        daphne_process(port=free_port(), env=redis_gateway_env) as second,
    ):
        yield first, second


def test_two_gateways_sharing_redis_share_one_concurrency_cap(live, two_gateways_on_one_redis):
    live.limit_key(concurrent_limit=3)
    gateways = [replace(live, url=gateway.url) for gateway in two_gateways_on_one_redis]
    for gateway in gateways:  # warm both processes up (key cache, connections)
        assert asyncio.run(fire(gateway, 1, chat_body())).pop().status_code == 200
    httpx.delete(f"{live.simulator_url}/_sim/requests", timeout=10).raise_for_status()
    body = chat_body("[sim:text first_delay_ms=400] hi")

    async def round_on_both() -> list[list[httpx.Response]]:
        # Spread over a second, so slots turn over and both processes can win some of them.
        return await asyncio.gather(*(fire(gateway, 10, body, spacing=0.1) for gateway in gateways))

    served, statuses = [0, 0], set()
    for _ in range(6):
        for index, responses in enumerate(asyncio.run(round_on_both())):
            served[index] += [response.status_code for response in responses].count(200)
            statuses |= {response.status_code for response in responses}
        if all(served):
            break
    assert all(served), served  # both processes served...
    records = live.sim_requests()
    assert len(records) == sum(served)
    assert peak_in_flight(records) <= 3  # ...but never more than 3 at once between them
    assert statuses == {200, 429}


def logged_rows(key: ClientKey, count: int, timeout: float = 10.0) -> list[RequestLog]:
    """The request-log rows of a key once the writer (off the request path) has stored ``count``."""
    deadline = time.monotonic() + timeout
    while True:
        rows = list(
            RequestLog.objects.filter(client_key_id=key.pk, surface__in=["openai-chat", "anthropic-messages"])
        )
        if len(rows) >= count or time.monotonic() > deadline:
            return rows
        time.sleep(0.1)


@pytest.mark.parametrize("surface", ["openai", "anthropic"])
def test_v1_me_reports_limits_with_their_use_and_the_logged_usage(live, surface):
    key = live.limit_key(
        rpm_limit=50,
        concurrent_limit=4,
        budget_tokens=100_000,
        budget_period="week",
        allowed_models=["deepseek/*"],
    )
    served = asyncio.run(fire(live, 3, chat_body("[sim:cache-usage] hi")))
    assert [response.status_code for response in served] == [200, 200, 200]
    rows = logged_rows(key, 3)
    headers = {"Authorization": f"Bearer {live.key}"}
    if surface == "anthropic":
        headers["anthropic-version"] = "2023-06-01"
    me = httpx.get(f"{live.url}/v1/me", headers=headers, timeout=10)
    assert me.status_code == 200
    body = me.json()
    assert body["object"] == "me"
    assert body["key"] == {"name": key.name, "prefix": key.prefix}
    assert body["user"]["username"] == key.user.username
    assert body["allowed_models"] == ["deepseek/*"]
    by_name = {entry["limit"]: entry for entry in body["limits"]}
    assert by_name["requests_per_minute"]["max"] == 50 and by_name["requests_per_minute"]["used"] >= 3
    assert by_name["requests_per_minute"]["resets_at"] > time.time()
    assert by_name["concurrent_requests"] == {
        "scope": "key",
        "limit": "concurrent_requests",
        "max": 4,
        "used": 0,
        "remaining": 4,
        "resets_at": None,
    }
    budget = by_name["budget_tokens"]
    logged_tokens = sum(row.input_tokens + row.output_tokens for row in rows)
    assert budget["period"] == "week" and budget["used"] == logged_tokens  # reconciled to the real usage
    usage = body["usage"]["key"]
    assert usage["period"] == "week"
    assert usage["input_tokens"] == sum(row.input_tokens for row in rows)
    assert usage["cached_input_tokens"] == sum(row.cache_read_tokens for row in rows) > 0
    assert usage["output_tokens"] == sum(row.output_tokens for row in rows)
    assert usage["total_tokens"] == logged_tokens
    assert body["usage"]["user"]["total_tokens"] == logged_tokens


def test_v1_me_errors_are_in_the_callers_envelope(live):
    openai_style = httpx.get(f"{live.url}/v1/me", headers={"Authorization": "Bearer nope"}, timeout=10)
    assert openai_style.status_code == 401 and "error" in openai_style.json()
    anthropic_style = httpx.get(
        f"{live.url}/v1/me", headers={"x-api-key": "nope", "anthropic-version": "2023-06-01"}, timeout=10
    )
    assert anthropic_style.status_code == 401 and anthropic_style.json()["type"] == "error"


def test_a_limit_change_reaches_a_running_gateway_within_a_second(live):
    assert asyncio.run(fire(live, 1, chat_body()))[0].status_code == 200  # cached, unlimited
    live.limit_key(allowed_models=["claude-*"])
    changed_at = time.monotonic()

    def refused() -> bool:
        return asyncio.run(fire(live, 1, chat_body()))[0].status_code == 403

    wait_until(refused, timeout=3)
    assert time.monotonic() - changed_at < 1.5


def open_stream(url: str, key: str, seconds: float) -> tuple[httpx.Client, Iterator[bytes]]:
    """A streaming chat request that lasts about ``seconds``, its headers and first bytes read;
    the rest is the returned iterator's (kept: a dropped iterator closes the response)."""
    client = httpx.Client(timeout=30)
    body = chat_body(f"[sim:paced deltas={round(seconds / 0.2)} delay_ms=200]", stream=True)
    request = client.build_request(
        "POST", f"{url}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}
    )
    response = client.send(request, stream=True)
    assert response.status_code == 200
    chunks = response.iter_bytes()
    next(chunks)
    return client, chunks


def test_a_stream_longer_than_the_slot_ttl_keeps_its_slot_in_every_process(live, two_gateways_on_one_redis):
    live.limit_key(concurrent_limit=1)
    first, second = (replace(live, url=gateway.url) for gateway in two_gateways_on_one_redis)
    client, stream = open_stream(first.url, live.key, seconds=4)
    try:
        time.sleep(2.5)  # 2.5 slot TTLs: the slot is still held because its process renews it
        busy = asyncio.run(fire(second, 1, chat_body()))[0]
        assert busy.status_code == 429 and busy.json()["error"]["code"] == "rate_limit_concurrency"
        assert b"[DONE]" in b"".join(stream)  # the stream ran to its end
    finally:
        stream.close()
        client.close()
    wait_until(lambda: asyncio.run(fire(second, 1, chat_body()))[0].status_code == 200, timeout=3)


def test_the_slot_of_a_crashed_gateway_expires(live, two_gateways_on_one_redis, redis_gateway_env):
    live.limit_key(concurrent_limit=1)
    survivor = replace(live, url=two_gateways_on_one_redis[1].url)
    with daphne_process(port=free_port(), env=redis_gateway_env) as doomed:
        client, stream = open_stream(doomed.url, live.key, seconds=8)
        try:
            os.kill(doomed.pid, signal.SIGKILL)  # no shutdown hook, no release: a crash
            killed_at = time.monotonic()
            assert asyncio.run(fire(survivor, 1, chat_body()))[0].status_code == 429
        finally:
            stream.close()
            client.close()
    wait_until(lambda: asyncio.run(fire(survivor, 1, chat_body()))[0].status_code == 200, timeout=5)
    assert time.monotonic() - killed_at < 3  # one slot TTL (1 s) after its last renewal, not 8 s


def test_a_tiny_cost_budget_is_shown_with_its_digits_not_as_zero(live):
    from decimal import Decimal

    from catalog.services import set_prices

    set_prices(MODEL, input="1000", output="1000")  # a cent per ten tokens: one request is over
    live.limit_key(budget_cost=Decimal("0.0001"))
    headers = {"Authorization": f"Bearer {live.key}"}
    url = f"{live.url}/v1/chat/completions"
    deadline = time.monotonic() + 5
    while (refused := httpx.post(url, json=chat_body(), headers=headers, timeout=10)).status_code != 429:
        assert time.monotonic() < deadline, "the gateway never read the new price"  # reloads within a second
        time.sleep(0.1)
    message = refused.json()["error"]["message"]
    assert "used up: 0.0001 USD (estimated) per month" in message, message
    me = httpx.get(f"{live.url}/v1/me", headers=headers, timeout=10).json()
    (budget,) = [entry for entry in me["limits"] if entry["limit"] == "budget_cost_usd"]
    assert budget["max"] == 0.0001  # the stored amount, exactly
