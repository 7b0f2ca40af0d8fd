"""The shared-state interface, proven the same way on both back ends (memory and Redis)."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from ccsite.sharedstate import MemoryState, RedisState, SharedState


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
