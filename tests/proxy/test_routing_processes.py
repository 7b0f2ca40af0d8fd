"""Two gateway processes sharing one Redis: one per-key concurrency cap across both, slots back
after a client disconnects, and an admin change seen by the other process within a second."""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
import pytest
import redis
from asgiref.sync import sync_to_async

from accounts.services import credential_set_enabled
from ccsite import invalidation
from ccsite.sharedstate import RedisState, reset_shared_state
from proxy import routing
from tests.factories import make_client_key, make_credential
from tests.live import daphne_process, free_port

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]
MODEL = "deepseek-v4-flash"


@pytest.fixture(scope="module")
def gateways(simulator, redis_server, django_db_setup, django_db_blocker):
    env = {
        "CC_UPSTREAM_BASE_URL": simulator.url,
        "REDIS_URL": redis_server.url,
        # Only the cross-process change signal may make the other process reload in time.
        "CCSITE_CREDENTIAL_CACHE_SECONDS": "60",
        "CCSITE_KEEPALIVE_SECONDS": "0.5",
        "CCSITE_ROUTING_POLICY": "drain_first",
    }
    with (
        daphne_process(port=free_port(), env=env) as first,
        daphne_process(port=free_port(), env=env) as second,
    ):
        yield first, second


@pytest.fixture
async def fresh_redis(redis_server, settings):
    client = redis.Redis.from_url(redis_server.url)
    client.flushdb()
    settings.REDIS_URL = redis_server.url
    state = RedisState(redis_server.url)  # this process plays the admin through it
    reset_shared_state(state)
    yield client
    client.close()
    await state.close()
    reset_shared_state(None)


def slots_in_use(client: redis.Redis, credential_id: int) -> int:
    key = f"ccsite:route:slots:{credential_id}"
    client.zremrangebyscore(key, "-inf", int(time.time() * 1000))
    return int(client.zcard(key))


def body(text: str = "hi", stream: bool = True) -> dict:
    return {"model": MODEL, "stream": stream, "messages": [{"role": "user", "content": text}]}


async def credentials_loaded_by(gateways, redis_client: redis.Redis) -> None:
    """Until every gateway has taken the credentials' current change version (each polls every
    half second): before that one may still route with the keys of the previous test."""
    version = int(redis_client.get(f"{invalidation.REDIS_PREFIX}{routing.INVALIDATION_NAME}") or 0)
    deadline = time.monotonic() + 5.0
    async with httpx.AsyncClient(timeout=10) as client:
        for gateway in gateways:
            while True:
                loaded = (await client.get(f"{gateway.url}/health")).json()["snapshots"]
                if loaded.get(routing.INVALIDATION_NAME) == version:
                    break
                assert time.monotonic() < deadline, f"{gateway.url} never took v{version}: {loaded}"
                await asyncio.sleep(0.05)


async def paced_credential(gateways, simulator, fresh_redis, label: str, cap: int, scenario: str):
    """An upstream key capped at ``cap`` concurrent requests that the simulator answers with
    ``scenario``, and a client key, once both gateways route with it: (credential, key secret)."""
    secret = f"user_procs_{uuid.uuid4().hex[:12]}"
    credential = await sync_to_async(make_credential)(label=label, api_key=secret, max_concurrent=cap)
    _, key = await sync_to_async(make_client_key)()
    async with httpx.AsyncClient(timeout=30) as client:
        behaviour = {"key": secret, "scenario": scenario}
        (await client.post(f"{simulator.url}/_sim/keys", json=behaviour)).raise_for_status()
    await credentials_loaded_by(gateways, fresh_redis)
    return credential, key


async def test_two_processes_respect_one_per_key_cap(gateways, simulator, fresh_redis):
    credential, key = await paced_credential(
        gateways, simulator, fresh_redis, "capped", 2, "paced deltas=20 delay_ms=60"
    )
    async with httpx.AsyncClient(timeout=30) as client:
        headers = {"Authorization": f"Bearer {key}"}

        async def one(index: int) -> int:
            url = gateways[index % 2].url + "/v1/chat/completions"
            response = await client.post(url, json=body(), headers=headers)
            return response.status_code

        statuses = await asyncio.gather(*(one(i) for i in range(10)))
    assert sorted(statuses) == [200, 200] + [429] * 8
    assert slots_in_use(fresh_redis, credential.pk) == 0


async def test_a_client_disconnect_gives_the_slot_back(gateways, simulator, fresh_redis):
    credential, key = await paced_credential(
        gateways, simulator, fresh_redis, "disc", 1, "paced deltas=200 delay_ms=50"
    )
    async with httpx.AsyncClient(timeout=30) as client:
        url = gateways[0].url + "/v1/chat/completions"
        async with client.stream(
            "POST", url, json=body(), headers={"Authorization": f"Bearer {key}"}
        ) as response:
            assert response.status_code == 200
            async for _ in response.aiter_bytes():
                break
            assert slots_in_use(fresh_redis, credential.pk) == 1
    await asyncio.sleep(1.0)  # the gateway notices the disconnect and closes the upstream
    assert slots_in_use(fresh_redis, credential.pk) == 0


async def test_disabling_reaches_the_other_process_within_a_second(gateways, simulator, fresh_redis):
    first_key = await sync_to_async(make_credential)(
        label="a-first", api_key=f"user_procs_{uuid.uuid4().hex[:12]}"
    )
    await sync_to_async(make_credential)(label="b-second", api_key=f"user_procs_{uuid.uuid4().hex[:12]}")
    _, key = await sync_to_async(make_client_key)()
    await credentials_loaded_by(gateways, fresh_redis)
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(timeout=30) as client:
        url = gateways[1].url + "/v1/chat/completions"
        # Both processes loaded the credentials (cached for 60 s) before the change.
        for gateway in gateways:
            response = await client.post(
                gateway.url + "/v1/chat/completions", json=body(stream=False), headers=headers
            )
            assert response.status_code == 200
        # This process plays the admin: disable a-first, then ask the other gateway.
        await sync_to_async(credential_set_enabled)(credentials=[first_key], enabled=False)
        await asyncio.sleep(1.0)
        before = len((await client.get(f"{simulator.url}/_sim/requests")).json()["requests"])
        response = await client.post(url, json=body(stream=False), headers=headers)
        assert response.status_code == 200
        records = (await client.get(f"{simulator.url}/_sim/requests")).json()["requests"]
    from proxy.upstream.simulator.recorder import key_fingerprint

    new = [r for r in records[before:] if r["path"] == "/alpha/generate"]
    assert new and all(r["key_fingerprint"] != key_fingerprint(first_key_secret(first_key)) for r in new)


def first_key_secret(credential) -> str:
    from accounts.crypto import decrypt_secret

    return decrypt_secret(credential.secret_encrypted)


async def test_an_edit_of_allowed_models_reaches_the_other_process_within_a_second(
    gateways, simulator, fresh_redis
):
    secret = f"user_procs_{uuid.uuid4().hex[:12]}"
    first_key = await sync_to_async(make_credential)(label="a-edit", api_key=secret)
    await sync_to_async(make_credential)(label="b-edit", api_key=f"user_procs_{uuid.uuid4().hex[:12]}")
    _, key = await sync_to_async(make_client_key)()
    await credentials_loaded_by(gateways, fresh_redis)
    headers = {"Authorization": f"Bearer {key}"}
    from proxy.upstream.simulator.recorder import key_fingerprint

    async with httpx.AsyncClient(timeout=30) as client:

        async def used_first_key() -> tuple[bool, float]:
            """Whether the other process sent one request upstream with a-edit, and when the
            upstream received it (epoch seconds: an upper bound of when the key was chosen)."""
            before = len((await client.get(f"{simulator.url}/_sim/requests")).json()["requests"])
            response = await client.post(
                gateways[1].url + "/v1/chat/completions", json=body(stream=False), headers=headers
            )
            assert response.status_code == 200
            records = (await client.get(f"{simulator.url}/_sim/requests")).json()["requests"][before:]
            generated = [r for r in records if r["path"] == "/alpha/generate"]
            assert len(generated) == 1, records
            return generated[0]["key_fingerprint"] == key_fingerprint(secret), generated[0]["received_at"]

        assert (await used_first_key())[0]  # drain_first: a-edit, loaded (60 s cache)
        first_key.allowed_models = ["stepfun/Step-3.5-Flash"]
        await sync_to_async(first_key.save)()  # what the admin's change form does
        changed_at = time.time()  # the save has returned
        while True:
            used, routed_at = await used_first_key()
            if not used:
                break
            assert routed_at - changed_at < 1.0, "the other process still sends the model to a-edit"
    assert routed_at - changed_at < 1.0
