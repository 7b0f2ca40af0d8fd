"""The shared-state interface, proven the same way on both back ends (memory and Redis)."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from ccsite.sharedstate import HeldSlots, MemoryState, RedisState, SharedState


@pytest.fixture(params=["memory", "redis"])
async def state(request):
    if request.param == "memory":
        backend: SharedState = MemoryState()
    else:
        backend = RedisState(request.getfixturevalue("redis_server").url)
    yield backend
    await backend.close()


@pytest.fixture
def name() -> str:
    return f"test:{uuid.uuid4().hex}"


async def test_window_counter_adds_and_refuses_past_the_limit(state, name):
    first = await state.hit(name, 60, amount=3)
    assert first.allowed and first.total == 3
    assert first.reset_at > time.time()
    assert (await state.hit(name, 60, amount=2, limit=5)).total == 5
    refused = await state.hit(name, 60, amount=1, limit=5)
    assert not refused.allowed and refused.total == 5
    assert (await state.window_total(name, 60)).total == 5


async def test_window_counter_starts_over_in_the_next_window(state, name):
    await state.hit(name, 0.2, amount=4)
    await asyncio.sleep(0.25)
    assert (await state.window_total(name, 0.2)).total == 0
    assert (await state.hit(name, 0.2)).total == 1


async def test_slots_hold_the_limit_and_come_back_on_release(state, name):
    tokens = [await state.acquire_slot(name, 2, 30) for _ in range(3)]
    assert tokens[0] and tokens[1] and tokens[2] is None
    assert await state.slots_in_use(name) == 2
    await state.release_slot(name, tokens[0])
    await state.release_slot(name, tokens[0])  # idempotent
    assert await state.slots_in_use(name) == 1
    assert await state.acquire_slot(name, 2, 30) is not None


async def test_slots_expire_so_a_crashed_holder_never_leaks_one(state, name):
    assert await state.acquire_slot(name, 1, 0.2) is not None
    assert await state.acquire_slot(name, 1, 0.2) is None
    await asyncio.sleep(0.3)
    assert await state.slots_in_use(name) == 0
    assert await state.acquire_slot(name, 1, 30) is not None


async def test_renewing_a_slot_keeps_it(state, name):
    token = await state.acquire_slot(name, 1, 0.3)
    await asyncio.sleep(0.2)
    assert await state.renew_slot(name, token, 0.3)
    await asyncio.sleep(0.2)
    assert await state.slots_in_use(name) == 1
    assert not await state.renew_slot(name, "not-a-token", 1)


async def test_concurrent_acquires_never_exceed_the_limit(state, name):
    tokens = await asyncio.gather(*(state.acquire_slot(name, 5, 30) for _ in range(40)))
    assert sum(token is not None for token in tokens) == 5


async def test_deadlines_are_kept_until_they_pass(state, name):
    until = time.time() + 0.3
    await state.set_until(name, until, "usage window")
    value = await state.get_until(name)
    assert value is not None and value.reason == "usage window"
    assert value.until == pytest.approx(until, abs=0.01)
    assert await state.get_many_until([name, name + ":other"]) == [value, None]
    await asyncio.sleep(0.35)
    assert await state.get_until(name) is None
    await state.set_until(name, time.time() + 30)
    await state.clear(name)
    assert await state.get_until(name) is None
    await state.set_until(name, time.time() - 1)  # already past: nothing stored
    assert await state.get_until(name) is None


async def test_a_claim_goes_to_one_caller_until_it_expires(state, name):
    results = await asyncio.gather(*(state.claim(name, 0.2) for _ in range(10)))
    assert sum(results) == 1
    await asyncio.sleep(0.25)
    assert await state.claim(name, 0.2)
    await state.clear(name)
    assert await state.claim(name, 0.2)


async def test_next_index_counts_up(state, name):
    assert [await state.next_index(name) for _ in range(3)] == [1, 2, 3]


async def test_two_clients_of_one_redis_share_the_slots(redis_server, name):
    # Two processes' worth of clients: the cap is one cap across them.
    first, second = RedisState(redis_server.url), RedisState(redis_server.url)
    try:
        assert await first.acquire_slot(name, 1, 30) is not None
        assert await second.acquire_slot(name, 1, 30) is None
        await first.set_until(name + ":cool", time.time() + 30, "401")
        assert (await second.get_until(name + ":cool")).reason == "401"
    finally:
        await first.close()
        await second.close()


def test_memory_back_end_never_yields_to_the_loop():
    # Each coroutine completes on its first step: no await inside can switch tasks.
    state = MemoryState()
    calls = [
        state.hit("n", 60),
        state.acquire_slot("s", 1, 30),
        state.slots_in_use("s"),
        state.set_until("u", time.time() + 5),
        state.get_many_until(["u"]),
        state.claim("c", 1),
        state.next_index("i"),
    ]
    for coroutine in calls:
        with pytest.raises(StopIteration):
            coroutine.send(None)


async def test_renew_slots_renews_many_at_once_and_counts_those_still_held(state, name):
    tokens = [await state.acquire_slot(name, 3, 0.3) for _ in range(2)]
    await asyncio.sleep(0.2)
    renewed = await state.renew_slots([(name, token) for token in tokens] + [(name, "gone")], 0.3)
    assert renewed == 2
    await asyncio.sleep(0.2)  # past the first expiry, within the renewed one
    assert await state.slots_in_use(name) == 2
    assert await state.renew_slots([], 1) == 0


async def test_a_counter_is_forgotten_at_its_expires_at(state, name):
    if isinstance(state, MemoryState):
        state.SWEEP_SECONDS = 0.0  # sweep at every hit: the test cannot wait a minute
    count = await state.hit(name, 1e10, amount=5, expires_at=time.time() + 0.3)
    assert count.total == 5 and (await state.window_total(name, 1e10)).total == 5
    await asyncio.sleep(0.4)
    await state.hit(name + ":other", 60)  # any later hit lets the memory back end sweep
    assert (await state.window_total(name, 1e10)).total == 0


async def test_an_endless_window_counter_gets_the_redis_ttl_it_asks_for(redis_server, name):
    state = RedisState(redis_server.url)
    try:
        await state.hit(name, 1e10, amount=1, expires_at=time.time() + 3600)
        ttl_ms = await state._redis().pttl(f"ccsite:{name}:0")
        assert 3_590_000 < ttl_ms <= 3_600_000
        await state.hit(name + ":plain", 60)  # without expires_at: the window's end + 1 s
        assert 0 < await state._redis().pttl(f"ccsite:{name}:plain:{int(time.time() // 60)}") <= 61_000
    finally:
        await state.close()


async def test_held_slots_outlive_their_ttl_until_dropped_then_expire(state, name):
    held = HeldSlots(lambda: 0.3)
    renewals: list[int] = []
    renew_slots = state.renew_slots

    async def counting(slots, ttl):
        renewals.append(len(slots))
        return await renew_slots(slots, ttl)

    state.renew_slots = counting
    tokens = [await state.acquire_slot(name, 2, 0.3) for _ in range(2)]
    for token in tokens:
        held.hold(state, name, token)
    await asyncio.sleep(1.0)  # three TTLs: alive only because they were renewed
    assert await state.slots_in_use(name) == 2
    assert await state.acquire_slot(name, 2, 0.3) is None
    assert renewals and set(renewals) == {2}  # one call per round renews both
    assert len(renewals) <= 11  # one round every ttl/3 (0.1 s), whatever the requests do
    # A crashed process renews nothing: its slots expire one TTL after the last renewal.
    for token in tokens:
        held.drop(token)
    await asyncio.sleep(0.45)
    assert await state.slots_in_use(name) == 0
    await held.stop()


async def test_memory_slot_tokens_are_unique_in_the_process(name):
    # Held slots of limits and routing are keyed by token across every MemoryState.
    first, second = MemoryState(), MemoryState()
    tokens = [await state.acquire_slot(name, 100, 30) for state in (first, second) for _ in range(50)]
    assert None not in tokens and len(set(tokens)) == 100
    await first.release_slot(name, tokens[0])
    assert await first.slots_in_use(name) == 49
    assert await second.slots_in_use(name) == 50
