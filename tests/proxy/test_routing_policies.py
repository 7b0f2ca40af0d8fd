"""Each selection policy over a table of key states, and eligibility over a table of states."""

from __future__ import annotations

import time

import pytest

from ccsite.sharedstate import MemoryState
from proxy import routing
from proxy.routing_policies import Candidate, daily_need, order, period
from proxy.upstream.credentials import Credential

DAY = 86400.0
NOW = 1_800_000_000.0

A = Candidate(1, "a", weight=1, in_flight=4, credits_remaining=100.0, period_end=NOW + 10 * DAY)
B = Candidate(2, "b", weight=2, in_flight=1, credits_remaining=30.0, period_end=NOW + 1 * DAY)
C = Candidate(3, "c", weight=1, in_flight=0, credits_remaining=None, period_end=None)


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ("least_in_flight", ["c", "b", "a"]),  # 0, 1/2, 4
        ("drain_first", ["a", "b", "c"]),
        ("balance_priority", ["a", "b", "c"]),  # 100, 30, unknown last
        ("daily_burn", ["b", "a", "c"]),  # 30/day, 10/day, unknown last
        ("auto", ["b", "a", "c"]),  # billing known: daily_burn
    ],
)
def test_each_policy_orders_the_table(policy, expected):
    assert [c.label for c in order(policy, [A, B, C], now=NOW)] == expected


def test_auto_without_billing_is_weighted_round_robin():
    plain = [Candidate(1, "a", weight=1), Candidate(2, "b", weight=2)]
    firsts = [order("auto", plain, position=p, now=NOW)[0].label for p in range(6)]
    assert firsts.count("b") == 4 and firsts.count("a") == 2


def test_round_robin_follows_weights_and_lists_every_key_once():
    keys = [Candidate(1, "a", weight=3), Candidate(2, "b", weight=1), Candidate(3, "c", weight=0)]
    firsts = [order("round_robin", keys, position=p)[0].label for p in range(8)]
    assert firsts.count("a") == 6 and firsts.count("b") == 2 and "c" not in firsts
    assert sorted(c.label for c in order("round_robin", keys, position=5)) == ["a", "b", "c"]


def test_daily_need_is_credit_per_remaining_day():
    assert daily_need(A, NOW) == pytest.approx(10.0)
    assert daily_need(B, NOW) == pytest.approx(30.0)
    assert daily_need(C, NOW) is None
    ending = Candidate(4, "d", credits_remaining=5.0, period_end=NOW - 10)
    assert daily_need(ending, NOW) == pytest.approx(5.0 * 24)  # never divides by ~0


def _entry(pk, *, enabled=True, models=(), credits=None, period_end=None, cap=None):
    return routing.RoutableCredential(
        Credential(pk, f"k{pk}", "user_x"), 1, frozenset(models), cap, enabled, credits, period_end
    )


async def test_eligibility_over_a_table_of_states():
    state = MemoryState()
    now = time.time()
    entries = [
        _entry(1),  # eligible
        _entry(2, enabled=False),  # disabled
        _entry(3, models=("other/model",)),  # not allowed for the model
        _entry(4),  # cooling
        _entry(5),  # model excluded (plan gating)
        _entry(6, credits=0.0, period_end=now + DAY),  # out of credit until renewal
        _entry(7, credits=0.0, period_end=now - 1),  # period renewed: eligible again
        _entry(8),  # half-open: cooldown over, one trial pending
    ]
    await state.set_until("route:cool:4", now + 60, "http_500")
    await state.set_until("route:model:5:m/x", now + 60, "not in plan")
    await state.set_until("route:probe:8", now + 600, "http_500")
    screened = await routing._screen(state, entries, "m/x", exclude=set())
    assert [e.id for e in screened.ready] == [1, 7, 8]
    assert screened.half_open == {8}
    assert (screened.configured, screened.enabled, screened.allowed) == (8, 7, 5)
    assert screened.cooling_until == pytest.approx(now + 60, abs=1)


@pytest.mark.parametrize(
    ("entries", "status", "code"),
    [
        ([], 503, "no_upstream_credential"),
        ([_entry(1, enabled=False)], 503, "upstream_credentials_disabled"),
        ([_entry(1, models=("other/model",))], 403, "model_not_allowed_on_any_credential"),
        ([_entry(4)], 429, "upstream_credentials_cooling"),
    ],
)
async def test_no_eligible_key_says_why(entries, status, code):
    state = MemoryState()
    await state.set_until("route:cool:4", time.time() + 120, "usage window exhausted")
    screened = await routing._screen(state, entries, "m/x", exclude=set())
    error = routing._no_eligible_error(screened, "m/x", busy=False)
    assert (error.error_class.openai_status, error.code) == (status, code)
    if status == 429:
        assert 100 < error.retry_after <= 120
        assert "cooling down until" in error.message


def test_an_order_repeats_after_its_period_when_the_position_is_all_it_depends_on():
    keys = [Candidate(1, "a", weight=3), Candidate(2, "b", weight=1), Candidate(3, "c", weight=0)]
    assert period("round_robin", keys) == 4
    for p in range(12):
        assert order("round_robin", keys, position=p) == order("round_robin", keys, position=p % 4)
    assert period("round_robin", [Candidate(1, "a", weight=0)]) == 1
    assert period("drain_first", keys) == period("balance_priority", keys) == 1
    assert period("least_in_flight", keys) is None
    assert period("daily_burn", keys) is None and period("auto", [A, B, C]) is None
