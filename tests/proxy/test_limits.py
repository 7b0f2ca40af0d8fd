"""Limits in process, on both shared-state back ends: windows turn, reservations reconcile."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from types import SimpleNamespace

import pytest

from accounts.limits import KeyLimits, Limits, key_limits, model_rule, period_bounds
from ccsite.sharedstate import MemoryState, RedisState, reset_shared_state
from proxy import limits as limits_module
from proxy.limits import Admission, LimitRefused, admit, counter_names
from proxy.translate.events import Usage
from usage.pricing import Prices


@pytest.fixture(params=["memory", "redis"])
async def state(request):
    if request.param == "memory":
        backend = MemoryState()
    else:
        backend = RedisState(request.getfixturevalue("redis_server").url)
    reset_shared_state(backend)
    yield backend
    await limits_module.settle()  # no slot renewal outlives the test's back end
    reset_shared_state(None)
    await backend.close()


@pytest.fixture
def short_minute(monkeypatch):
    """A 1-second "minute", so a test can watch the window turn."""
    monkeypatch.setattr(limits_module, "MINUTE", 1.0)


_serial = iter(range(10**9))


def key(**numbers: int) -> KeyLimits:
    # A fresh key prefix per call: counters of one test never meet another's on a shared Redis.
    return KeyLimits(
        user_id=0, key_prefix=f"ccs_test{next(_serial)}", user=None, key=Limits(**numbers), models=None
    )


async def top_of_next_window() -> None:
    await asyncio.sleep(1.0 - time.time() % 1.0 + 0.02)


async def admit_or_refusal(limits: KeyLimits, tokens: int = 10):
    try:
        return await admit(limits, client_model="m", upstream_model="m", estimated_input_tokens=tokens)
    except LimitRefused as exc:
        return exc.error


async def test_requests_per_window_refuse_then_reset(state, short_minute):
    limits = key(rpm=2)
    await top_of_next_window()  # start at the top of a window
    first, second, third = [await admit_or_refusal(limits) for _ in range(3)]
    assert third.code == "rate_limit_requests" and third.retry_after is not None
    assert 0 < third.retry_after <= 1.0
    assert "2 requests per minute" in third.message
    for admission in (first, second):
        await admission.settle(Usage(input_tokens=10, output_tokens=5))
    await top_of_next_window()
    assert isinstance(await admit_or_refusal(limits), Admission)


async def test_tokens_per_window_refuse_then_reset(state, short_minute):
    limits = key(tpm=100)
    await top_of_next_window()
    admission = await admit_or_refusal(limits, tokens=60)
    await admission.settle(Usage(input_tokens=60, output_tokens=30))  # 90 of 100 now
    refused = await admit_or_refusal(limits, tokens=20)
    assert refused.code == "rate_limit_tokens" and "100 tokens per minute" in refused.message
    await top_of_next_window()
    assert isinstance(await admit_or_refusal(limits, tokens=20), Admission)


async def test_a_budget_reconciles_to_the_real_usage(state):
    limits = key(budget_tokens=1_000)
    name = counter_names(f"key:{limits.key_prefix}", limits.key)["budget_tokens"]
    admission = await admit_or_refusal(limits, tokens=100)
    assert (await state.window_total(name, limits_module.FOREVER)).total == 100  # reserved
    await admission.settle(Usage(input_tokens=120, output_tokens=280))
    assert (await state.window_total(name, limits_module.FOREVER)).total == 400  # reconciled
    await admission.settle(Usage(input_tokens=1, output_tokens=1))  # settling twice changes nothing
    assert (await state.window_total(name, limits_module.FOREVER)).total == 400


async def test_a_refusal_gives_back_what_earlier_checks_took(state):
    limits = key(rpm=10, tpm=1_000, concurrent=1)
    holder = await admit_or_refusal(limits, tokens=100)
    refused = await admit_or_refusal(limits, tokens=100)
    assert refused.code == "rate_limit_concurrency"
    names = counter_names(f"key:{limits.key_prefix}", limits.key)
    assert (await state.window_total(names["rpm"], 60)).total == 1
    assert (await state.window_total(names["tpm"], 60)).total == 100
    await holder.settle(None)
    assert await state.slots_in_use(names["concurrent"]) == 0


async def test_a_cost_budget_prices_cache_reads_apart(state, monkeypatch):
    # $3 per million input tokens, $0.30 cache read, $3.75 cache write, $15 output.
    prices = Prices(
        input=Decimal(3), output=Decimal(15), cache_read=Decimal("0.3"), cache_write=Decimal("3.75")
    )
    monkeypatch.setattr(limits_module, "_price_source", lambda model: prices)
    limits = key(budget_micro_usd=10_000)  # one cent
    admission = await admit_or_refusal(limits, tokens=100)
    cached = Usage(input_tokens=1_100, cache_read_tokens=1_000, output_tokens=100)
    await admission.settle(cached)
    name = counter_names(f"key:{limits.key_prefix}", limits.key)["budget_cost"]
    # 100 x 3 + 1000 x 0.3 + 100 x 15 = 2100 millionths of a dollar, not 1100 x 3 + 1500.
    assert (await state.window_total(name, limits_module.FOREVER)).total == 2_100


async def test_budget_counters_expire_after_their_period_on_redis(redis_server):
    state = RedisState(redis_server.url)
    reset_shared_state(state)
    try:
        limits = key(budget_tokens=1_000, period="day")
        admission = await admit_or_refusal(limits, tokens=100)
        await admission.settle(Usage(input_tokens=150, output_tokens=50))
        name = counter_names(f"key:{limits.key_prefix}", limits.key)["budget_tokens"]
        expected = period_bounds("day")[2].timestamp() + limits_module.BUDGET_GRACE_SECONDS - time.time()
        ttl_seconds = await state._redis().pttl(f"ccsite:{name}:0") / 1000
        assert expected - 5 < ttl_seconds <= expected + 1  # the day's end plus the grace, not forever
        assert (await state.window_total(name, limits_module.FOREVER)).total == 200
    finally:
        reset_shared_state(None)
        await state.close()


async def test_a_request_outliving_the_slot_ttl_keeps_its_slot_until_it_ends(state, settings):
    settings.CCSITE_LIMIT_SLOT_SECONDS = 0.3
    limits = key(concurrent=1)
    running = await admit_or_refusal(limits)
    await asyncio.sleep(1.0)  # more than three TTLs: the process renews the running request's slot
    assert (await admit_or_refusal(limits)).code == "rate_limit_concurrency"
    await running.settle(Usage(input_tokens=1, output_tokens=1))
    assert isinstance(await admit_or_refusal(limits), Admission)


async def test_the_slot_of_a_request_whose_process_died_expires(state, settings):
    settings.CCSITE_LIMIT_SLOT_SECONDS = 0.3
    limits = key(concurrent=1)
    orphan = await admit_or_refusal(limits)
    for _, token in orphan.slots:  # the process is gone: nobody renews or releases the slot
        limits_module.held_slots.drop(token)
    assert (await admit_or_refusal(limits)).code == "rate_limit_concurrency"
    await asyncio.sleep(0.45)
    assert isinstance(await admit_or_refusal(limits), Admission)


@pytest.mark.django_db  # allowed models resolve through the operator's catalog
def test_user_and_key_limits_combine():
    user = SimpleNamespace(
        pk=7,
        allowed_models=["claude-*"],
        rpm_limit=5,
        tpm_limit=None,
        concurrent_limit=None,
        budget_tokens=None,
        budget_cost=Decimal("2.5"),
        budget_period="week",
    )
    row = SimpleNamespace(
        pk=9,
        prefix="ccs_abc",
        allowed_models=[],
        rpm_limit=None,
        tpm_limit=None,
        concurrent_limit=2,
        budget_tokens=None,
        budget_cost=None,
        budget_period="month",
    )
    limits = key_limits(row, user)
    assert limits.user == Limits(rpm=5, budget_micro_usd=2_500_000, period="week")
    assert limits.key == Limits(concurrent=2)
    assert limits.models.allows("claude-sonnet-5") and not limits.models.allows("gpt-5.4")
    nothing = SimpleNamespace(**{**vars(row), "concurrent_limit": None})
    plain_user = SimpleNamespace(
        **{**vars(user), "allowed_models": [], "rpm_limit": None, "budget_cost": None}
    )
    assert key_limits(nothing, plain_user) is None  # no limits: nothing to check per request


@pytest.mark.django_db
def test_allowed_models_take_aliases_and_wildcards():
    rule = model_rule(["Claude-Sonnet-5", "deepseek/*"])
    assert rule.allows("claude-sonnet-5")
    assert rule.allows("whatever", "deepseek/deepseek-v4-flash")  # the resolved upstream id counts
    assert not rule.allows("gpt-5.4")


def test_calendar_periods():
    from datetime import UTC, datetime

    now = datetime(2026, 12, 31, 13, 5, tzinfo=UTC)  # a Thursday
    assert period_bounds("day", now)[0] == "2026-12-31"
    label, start, end = period_bounds("week", now)
    assert (start.weekday(), (end - start).days, label) == (0, 7, "2026-W53")
    label, start, end = period_bounds("month", now)
    assert (label, start.day, end) == ("2026-12", 1, datetime(2027, 1, 1, tzinfo=UTC))
