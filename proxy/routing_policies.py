"""How eligible credentials are ordered for a request: the selection policies, as pure functions.

Each policy takes the eligible candidates (already filtered: enabled, allowed for the model,
not cooling down, not excluded, not out of credit) and returns them best first; routing then
takes the first one whose concurrency slot it can get, so a key at its cap falls through to
the next. Policies (``CCSITE_ROUTING_POLICY``):

- ``round_robin``: weighted rotation; a key of weight 3 gets three turns of every
  ``sum(weights)``; a key of weight 0 is a standby, tried after the others. The shared
  position makes it one rotation across processes.
- ``least_in_flight``: fewest requests in flight now, relative to weight.
- ``drain_first``: the credentials' own order (label), so the first is used until it is
  blocked, busy or out of credit.
- ``balance_priority``: most remaining credit first (unknown credit last).
- ``daily_burn``: most credit that must be spent per remaining day of the billing period to
  use it all (``remaining / days_left``); unknown billing last.
- ``auto`` (default): ``daily_burn`` once any candidate has a billing snapshot, else
  ``round_robin``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

POLICIES = ("round_robin", "least_in_flight", "drain_first", "balance_priority", "daily_burn")
DAY = 86400.0
# A period ending within this is treated as ending in this much time (no division by ~0).
MIN_DAYS_LEFT = 1 / 24


@dataclass(frozen=True, slots=True)
class Candidate:
    id: int
    label: str
    weight: int = 1
    in_flight: int = 0
    credits_remaining: float | None = None  # credits left in the billing period, when known
    period_end: float | None = None  # epoch seconds the billing period renews, when known


def _turns(candidates: list[Candidate]) -> list[Candidate]:
    """One rotation: each key ``weight`` times (all once when every weight is 0)."""
    turns = [candidate for candidate in candidates for _ in range(max(candidate.weight, 0))]
    return turns or list(candidates)


def round_robin(candidates: list[Candidate], position: int, now: float) -> list[Candidate]:
    turns = _turns(candidates)
    start = position % len(turns)
    ordered: list[Candidate] = []
    seen: set[int] = set()  # by id: comparing dataclasses field by field is the slow way
    for candidate in turns[start:] + turns[:start]:
        if candidate.id not in seen:
            seen.add(candidate.id)
            ordered.append(candidate)
    # Weight 0 keys get no turns of their own: standby, tried after the others.
    return ordered + [candidate for candidate in candidates if candidate.id not in seen]


def least_in_flight(candidates: list[Candidate], position: int, now: float) -> list[Candidate]:
    return sorted(candidates, key=lambda c: (c.in_flight / max(c.weight, 1), -c.weight, c.label))


def drain_first(candidates: list[Candidate], position: int, now: float) -> list[Candidate]:
    return sorted(candidates, key=lambda c: c.label)


def balance_priority(candidates: list[Candidate], position: int, now: float) -> list[Candidate]:
    known = sorted(
        (c for c in candidates if c.credits_remaining is not None),
        key=lambda c: (-(c.credits_remaining or 0.0), c.label),
    )
    return known + [c for c in candidates if c.credits_remaining is None]


def daily_need(candidate: Candidate, now: float) -> float | None:
    """Credits per day this key must spend to use its remaining credit before renewal."""
    if candidate.credits_remaining is None or candidate.period_end is None:
        return None
    days_left = max((candidate.period_end - now) / DAY, MIN_DAYS_LEFT)
    return candidate.credits_remaining / days_left


def daily_burn(candidates: list[Candidate], position: int, now: float) -> list[Candidate]:
    needs = {c.id: daily_need(c, now) for c in candidates}
    known = sorted((c for c in candidates if needs[c.id] is not None), key=lambda c: (-needs[c.id], c.label))  # type: ignore[operator]
    return known + [c for c in candidates if needs[c.id] is None]


_BY_NAME: dict[str, Callable[[list[Candidate], int, float], list[Candidate]]] = {
    "round_robin": round_robin,
    "least_in_flight": least_in_flight,
    "drain_first": drain_first,
    "balance_priority": balance_priority,
    "daily_burn": daily_burn,
}


def effective_policy(name: str, candidates: list[Candidate]) -> str:
    if name != "auto":
        return name
    has_billing = any(c.credits_remaining is not None for c in candidates)
    return "daily_burn" if has_billing else "round_robin"


def period(name: str, candidates: list[Candidate]) -> int | None:
    """After how many positions ``order(name, candidates, position=...)`` repeats, when the
    position is all it depends on (not the time, not the in-flight counts): the order for
    ``position`` is then the one for ``position % period``, and a caller may keep it. None for
    the policies that depend on more."""
    name = effective_policy(name, candidates)
    if name == "round_robin":
        return len(_turns(candidates)) or None
    if name in ("drain_first", "balance_priority"):
        return 1
    return None


def order(name: str, candidates: list[Candidate], *, position: int = 0, now: float = 0.0) -> list[Candidate]:
    """``candidates`` best first under policy ``name`` (``auto`` or one of ``POLICIES``)."""
    return _BY_NAME[effective_policy(name, candidates)](list(candidates), position, now)
