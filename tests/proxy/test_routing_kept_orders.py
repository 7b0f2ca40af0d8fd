"""Picks through RoutingChooser follow the policies exactly although routing keeps, per
credential snapshot and model, what does not change between requests (the allowed keys, their
state names, the round-robin rotation's orders)."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

from ccsite.sharedstate import MemoryState, reset_shared_state
from proxy import routing
from proxy.routing_policies import order
from proxy.upstream.credentials import Credential

MODEL = "m/x"


def _entry(pk: int, weight: int = 1, *, credits: float | None = None) -> routing.RoutableCredential:
    return routing.RoutableCredential(
        Credential(pk, f"k{pk}", "user_x"), weight, frozenset(), None, True, credits, None
    )


@pytest.fixture
def state(monkeypatch, settings):
    backend = MemoryState()
    reset_shared_state(backend)
    snapshot = {"entries": [_entry(1, 3), _entry(2, 1), _entry(3, 0)]}

    async def all_credentials():
        return snapshot["entries"]

    monkeypatch.setattr(routing.pool, "all", all_credentials)
    settings.CCSITE_ROUTING_POLICY = "round_robin"
    backend.snapshot = snapshot  # type: ignore[attr-defined]
    yield backend
    reset_shared_state(None)


async def _pick(exclude: set[int] | None = None) -> tuple[int, routing.RoutingChooser]:
    chooser = routing.RoutingChooser(MODEL, "", None)
    entry = await chooser.pick(exclude=exclude or set())
    assert entry is not None
    chooser.finish()
    return entry.id, chooser


async def test_round_robin_picks_follow_the_weighted_rotation_position_by_position(state):
    candidates = [routing._candidate(entry, 0) for entry in state.snapshot["entries"]]
    expected = [order("round_robin", candidates, position=p)[0].id for p in range(1, 25)]
    assert [(await _pick())[0] for _ in range(24)] == expected
    assert expected.count(1) == 18 and expected.count(2) == 6  # weight 0: standby only
    await routing.settle()


async def test_least_in_flight_orders_by_the_slots_held_now(state, settings):
    settings.CCSITE_ROUTING_POLICY = "least_in_flight"
    await state.acquire_slot("route:slots:1", 100, 60)
    await state.acquire_slot("route:slots:3", 100, 60)
    assert (await _pick())[0] == 2
    await state.acquire_slot("route:slots:2", 100, 60)
    await state.acquire_slot("route:slots:2", 100, 60)
    assert (await _pick())[0] == 1  # 1/3 in flight per weight beats 1 (key 3) and 2 (key 2)
    await routing.settle()


async def test_a_changed_policy_or_snapshot_applies_on_the_next_pick(state, settings):
    settings.CCSITE_ROUTING_POLICY = "drain_first"
    assert {(await _pick())[0] for _ in range(3)} == {1}
    settings.CCSITE_ROUTING_POLICY = "balance_priority"
    state.snapshot["entries"] = [_entry(1, credits=5.0), _entry(2, credits=50.0), _entry(3)]
    assert (await _pick())[0] == 2
    state.snapshot["entries"] = [replace(_entry(1), enabled=False), _entry(2, 0), _entry(3, 2)]
    settings.CCSITE_ROUTING_POLICY = "round_robin"
    assert {(await _pick())[0] for _ in range(4)} == {3}
    await routing.settle()


async def test_excluded_and_cooling_keys_leave_the_others_in_policy_order(state):
    await state.set_until("route:cool:1", time.time() + 60, "usage window exhausted")
    picked = [(await _pick())[0] for _ in range(4)]
    assert set(picked) == {2}  # key 3 (weight 0) is the standby behind key 2
    picked, chooser = await _pick(exclude={2})
    assert picked == 3 and chooser._entries[1].id == 1  # the whole snapshot, disabled keys too
    await routing.settle()
