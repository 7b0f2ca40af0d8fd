"""A key's or a user's limits with their current use, and usage this period: what `/v1/me`
and the self-service page show. Reads the shared state and the request log (not hot path)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from asgiref.sync import sync_to_async

from accounts.limits import KeyLimits, Limits, period_bounds
from ccsite.sharedstate import shared_state
from proxy.limits import FOREVER, MINUTE, counter_names
from usage.selectors import ReportFilter, totals

MICRO = 1_000_000


async def limit_use(scope: str, scope_id: str, limits: Limits) -> list[dict[str, Any]]:
    """One entry per limit set on the scope: its maximum, current use and reset time."""
    state = shared_state()
    names = counter_names(scope_id, limits)
    period_end = period_bounds(limits.period)[2].timestamp()
    entries: list[dict[str, Any]] = []
    for limit, maximum, counter in (
        ("requests_per_minute", limits.rpm, "rpm"),
        ("tokens_per_minute", limits.tpm, "tpm"),
    ):
        if maximum is not None:
            count = await state.window_total(names[counter], MINUTE)
            entries.append(_entry(scope, limit, maximum, count.total, count.reset_at))
    if limits.budget_tokens is not None:
        count = await state.window_total(names["budget_tokens"], FOREVER)
        entry = _entry(scope, "budget_tokens", limits.budget_tokens, count.total, period_end)
        entries.append({**entry, "period": limits.period})
    if limits.budget_micro_usd is not None:
        count = await state.window_total(names["budget_cost"], FOREVER)
        entry = _entry(
            scope, "budget_cost_usd", limits.budget_micro_usd / MICRO, count.total / MICRO, period_end
        )
        entries.append({**entry, "period": limits.period})
    if limits.concurrent is not None:
        in_use = await state.slots_in_use(names["concurrent"])
        entries.append(_entry(scope, "concurrent_requests", limits.concurrent, in_use, None))
    return entries


def _entry(scope: str, limit: str, maximum: float, used: float, resets_at: float | None) -> dict[str, Any]:
    return {
        "scope": scope,
        "limit": limit,
        "max": maximum,
        "used": used,
        "remaining": max(0, maximum - used),
        "resets_at": None if resets_at is None else int(resets_at),
    }


async def limits_with_use(limits: KeyLimits | None) -> list[dict[str, Any]]:
    if limits is None:
        return []
    entries = []
    if limits.user is not None:
        entries += await limit_use("user", f"user:{limits.user_id}", limits.user)
    if limits.key is not None:
        entries += await limit_use("key", f"key:{limits.key_prefix}", limits.key)
    return entries


def reporting_period(limits: KeyLimits | None) -> str:
    """The period usage is reported for: the key's budget period, else the user's, else month."""
    for scope in (limits.key, limits.user) if limits else ():
        if scope is not None and (scope.budget_tokens is not None or scope.budget_micro_usd is not None):
            return scope.period
    return "month"


@dataclass(frozen=True)
class PeriodUsage:
    period: str
    start: datetime
    end: datetime
    totals: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        t = self.totals
        cost = t.get("cost_usd")
        return {
            "period": self.period,
            "period_start": int(self.start.timestamp()),
            "period_end": int(self.end.timestamp()),
            "requests": t["requests"],
            "errors": t["errors"],
            "input_tokens": t["input_tokens"],
            "cached_input_tokens": t["cache_read_tokens"],
            "cache_write_tokens": t["cache_write_tokens"],
            "output_tokens": t["output_tokens"],
            "reasoning_tokens": t["reasoning_tokens"],
            "total_tokens": t["input_tokens"] + t["output_tokens"],
            "estimated_cost_usd": None if cost is None else float(cost),
        }


def period_usage(period: str, *, user_id: int | None = None, key_id: int | None = None) -> PeriodUsage:
    """Logged usage of one key or one user in the current calendar period (a query)."""
    _, start, end = period_bounds(period)
    return PeriodUsage(
        period, start, end, totals(ReportFilter(since=start, until=end, user_id=user_id, key_id=key_id))
    )


aperiod_usage = sync_to_async(period_usage)
