"""Per-user and per-key usage limits as plain, frozen data: what the hot path reads.

A key's effective limits are built once when the key is loaded into the key cache (no query
per request) and travel on its ``KeyPrincipal``. ``KeyPrincipal.limits`` is None when neither
the key nor its user sets anything, so unlimited traffic pays one attribute test.

Semantics:
- numeric limits of the user bound all the user's keys together (counted per user); those of a
  key bound that key alone (counted per key); both are enforced;
- allowed models: the key's list when it has one, else the user's; empty = any model. Entries
  are catalog ids, aliases or shell-style wildcards (``claude-*``), case-insensitive;
- budget periods are calendar periods in UTC (weeks start on Monday).
"""

from __future__ import annotations

import calendar
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fnmatch import fnmatchcase
from typing import Any


def _resolve(name: str) -> Any:
    """The catalog entry a name means (the operator's catalog: ids, short names, aliases)."""
    from catalog.snapshot import current

    return current().catalog.resolve(name)


PERIODS = ("day", "week", "month")
MICRO_USD = 1_000_000  # cost counters are integers in millionths of a dollar


@dataclass(frozen=True, slots=True)
class Limits:
    """One scope's numeric limits (None = no limit). ``budget_micro_usd`` is cost x 10^6."""

    rpm: int | None = None
    tpm: int | None = None
    concurrent: int | None = None
    budget_tokens: int | None = None
    budget_micro_usd: int | None = None
    period: str = "month"

    @property
    def empty(self) -> bool:
        return (
            self.rpm is None
            and self.tpm is None
            and self.concurrent is None
            and self.budget_tokens is None
            and self.budget_micro_usd is None
        )


@dataclass(frozen=True, slots=True)
class ModelRule:
    """Allowed models, pre-resolved through the catalog: ids (lower case) and wildcards."""

    patterns: tuple[str, ...]
    ids: frozenset[str]
    wildcards: tuple[str, ...]

    def allows(self, *names: str) -> bool:
        for name in names:
            lowered = name.lower()
            if lowered in self.ids or any(fnmatchcase(lowered, w) for w in self.wildcards):
                return True
        return False


@dataclass(frozen=True, slots=True)
class KeyLimits:
    """Everything enforced for one key: (scope, id, limits) pairs and the model rule."""

    user_id: int
    key_prefix: str  # names the key's counters: unique, and never reused like a row id can be
    user: Limits | None
    key: Limits | None
    models: ModelRule | None

    @property
    def counts_tokens(self) -> bool:
        """Whether admission needs the request's token estimate (a tpm limit or a budget)."""
        return any(
            scope is not None
            and (
                scope.tpm is not None or scope.budget_tokens is not None or scope.budget_micro_usd is not None
            )
            for scope in (self.user, self.key)
        )


def model_rule(patterns: list[str] | tuple[str, ...] | None) -> ModelRule | None:
    cleaned = tuple(p.strip() for p in patterns or () if isinstance(p, str) and p.strip())
    if not cleaned:
        return None
    ids: set[str] = set()
    wildcards: list[str] = []
    for pattern in cleaned:
        if any(ch in pattern for ch in "*?["):
            wildcards.append(pattern.lower())
            continue
        ids.add(pattern.lower())
        info = _resolve(pattern)  # an alias allows the model it names
        if info is not None:
            ids.add(info.id.lower())
    return ModelRule(cleaned, frozenset(ids), tuple(wildcards))


def _micro(cost: Decimal | None) -> int | None:
    return None if cost is None else int(cost * MICRO_USD)


def limits_of(row: Any) -> Limits | None:
    """The numeric limits of a User or ClientKey row (anything with the UsageLimits fields)."""
    limits = Limits(
        rpm=row.rpm_limit,
        tpm=row.tpm_limit,
        concurrent=row.concurrent_limit,
        budget_tokens=row.budget_tokens,
        budget_micro_usd=_micro(row.budget_cost),
        period=row.budget_period or "month",
    )
    return None if limits.empty else limits


def key_limits(key_row: Any, user_row: Any) -> KeyLimits | None:
    """Effective limits of a key (its row and its user's), or None when nothing is limited."""
    user, key = limits_of(user_row), limits_of(key_row)
    models = model_rule(key_row.allowed_models) or model_rule(user_row.allowed_models)
    if user is None and key is None and models is None:
        return None
    return KeyLimits(user_row.pk, key_row.prefix, user, key, models)


_current: dict[str, tuple[float, tuple[str, datetime, datetime]]] = {}


def period_bounds(period: str, now: datetime | None = None) -> tuple[str, datetime, datetime]:
    """(label, start, end) of the calendar period (UTC) containing ``now`` (default: now).

    The label names the period in counter keys and reports: ``2026-11-30``, ``2026-W49``,
    ``2026-11``. The current period is computed once and reused until it ends (hot path).
    """
    if now is None:
        cached = _current.get(period)
        if cached is not None and time.time() < cached[0]:
            return cached[1]
        bounds = _period_bounds(period, datetime.now(UTC))
        _current[period] = (bounds[2].timestamp(), bounds)
        return bounds
    return _period_bounds(period, now.astimezone(UTC))


def _period_bounds(period: str, now: datetime) -> tuple[str, datetime, datetime]:
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        return today.strftime("%Y-%m-%d"), today, today + timedelta(days=1)
    if period == "week":
        start = today - timedelta(days=today.weekday())
        year, week, _ = start.isocalendar()
        return f"{year}-W{week:02d}", start, start + timedelta(days=7)
    start = today.replace(day=1)
    days = calendar.monthrange(start.year, start.month)[1]
    return start.strftime("%Y-%m"), start, start + timedelta(days=days)
