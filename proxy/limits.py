"""Per-user and per-key limits on the /v1 path: admit before dispatch, settle when it ends.

``admit`` runs in ``proxy.generation`` before any upstream call, only for keys whose
``KeyPrincipal.limits`` is set (built when the key was cached: no query here). In order it
checks the allowed models (403), requests per minute, tokens per minute and the period budget
(429, reserving the request's input-token estimate), then takes a concurrency slot (429).
A refusal undoes what the earlier checks took. Counters and slots live in
``ccsite.sharedstate`` (Redis when ``REDIS_URL`` is set, process memory otherwise); every check
is one atomic operation, so concurrent requests cannot overshoot a cap.

``Admission.settle`` runs once when the request ends (success, error, client disconnect): it
gives the slot back and replaces each reservation by the real usage (or keeps the estimate
when none arrived, as the request log does; a request that failed before the upstream began,
which the log records with no tokens, gives its reservation back). So a budget can be
overshot only by the reconciliation of requests already admitted. While a request runs, this
process renews its slots in the background (one call for all of them every
CCSITE_LIMIT_SLOT_SECONDS / 3, ``ccsite.sharedstate.HeldSlots``), so a request that lasts
longer than that keeps its slot; a slot held by a process that died is no
longer renewed and expires CCSITE_LIMIT_SLOT_SECONDS after its last renewal.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache

from accounts.limits import MICRO_USD, KeyLimits, Limits, period_bounds
from ccsite.settings_cache import cached_settings
from ccsite.sharedstate import HeldSlots, SharedState, is_immediate, run_now, shared_state
from proxy import outcomes
from proxy.outcomes import RequestOutcome
from proxy.translate.errors import PERMISSION, QUOTA, RATE_LIMIT, ClientError
from proxy.translate.events import Usage
from usage import pricing
from usage.pricing import Prices, cost_usd

logger = logging.getLogger(__name__)

MINUTE = 60.0
# Budget counters carry their calendar period in their name, so their window never has to turn;
# they are stored until their period ends plus this grace (late settlements, clock skew), then
# forgotten, so the shared state does not grow with every period.
FOREVER = 1e10
BUDGET_GRACE_SECONDS = 3600.0
# How long a refused client should wait when only a concurrency slot was missing.
CONCURRENCY_RETRY_SECONDS = 1.0

# The slots of this process's running requests, kept alive while they run.
held_slots = HeldSlots(lambda: cached_settings.CCSITE_LIMIT_SLOT_SECONDS)

PriceSource = Callable[[str], Prices | None]
# The request log's pricing seam (catalog prices): one source of cost for logs and budgets.
_price_source: PriceSource = pricing.prices_for


def cost_micro_usd(model: str, usage: Usage) -> int:
    """Estimated cost in millionths of a dollar; cache reads priced apart. 0 when unpriced."""
    cost = cost_usd(usage, _price_source(model))
    return 0 if cost is None else int(cost * MICRO_USD)


def usd_text(micro_usd: int) -> str:
    """An amount for a message: cents from 0.01 USD up, else every digit (never 0.00 for 0.0001)."""
    usd = Decimal(micro_usd) / MICRO_USD
    if usd == 0 or usd >= Decimal("0.01"):
        return f"{usd:.2f}"
    return f"{usd:f}".rstrip("0")


class LimitRefused(Exception):
    """The request is over a limit; ``error`` is what the client sees (no upstream call made)."""

    def __init__(self, error: ClientError) -> None:
        super().__init__(error.message)
        self.error = error


@dataclass(slots=True)
class Reservation:
    name: str
    window: float
    amount: int
    reset_at: float
    kind: str  # "requests", "tokens" or "cost"
    expires_at: float | None = None  # when the shared state may forget the counter

    async def add(self, state: SharedState, amount: int) -> None:
        await state.hit(self.name, self.window, amount=amount, expires_at=self.expires_at)


@dataclass(slots=True)
class Admission:
    """What one admitted request holds until it ends."""

    state: SharedState
    model: str
    reservations: list[Reservation] = field(default_factory=list)
    slots: list[tuple[str, str]] = field(default_factory=list)
    settled: bool = False

    async def settle(self, usage: Usage | None) -> None:
        """Release the slots; reconcile tokens and cost with the real usage (idempotent)."""
        if self.settled:
            return
        await self._release_slots()
        if usage is None:
            return  # no usage arrived: the reservation stands as the best estimate
        for reservation in self.reservations:
            if reservation.kind == "tokens":
                delta = usage.total_tokens - reservation.amount
            elif reservation.kind == "cost":  # priced only when a cost budget asks for it
                delta = cost_micro_usd(self.model, usage) - reservation.amount
            else:
                continue
            # A reservation whose window has turned is gone: only a shortfall still counts.
            if delta < 0 and time.time() >= reservation.reset_at:
                continue
            if delta:
                await reservation.add(self.state, delta)

    async def _release_slots(self) -> None:
        self.settled = True
        for name, token in self.slots:
            held_slots.drop(token)
            await self.state.release_slot(name, token)

    async def undo(self) -> None:
        await self._release_slots()
        for reservation in self.reservations:
            if time.time() < reservation.reset_at:
                await reservation.add(self.state, -reservation.amount)


def _when(reset_at: float) -> str:
    moment = datetime.fromtimestamp(reset_at, UTC)
    wait = max(1, round(reset_at - time.time()))
    return f"resets at {moment:%Y-%m-%d %H:%M:%S} UTC (in {wait} s)"


def _refusal(message: str, code: str, retry_at: float | None, *, quota: bool = False) -> LimitRefused:
    retry_after = None if retry_at is None else max(1.0, retry_at - time.time())
    return LimitRefused(
        ClientError(QUOTA if quota else RATE_LIMIT, message, code=code, retry_after=retry_after)
    )


def _scopes(limits: KeyLimits) -> list[tuple[str, str, Limits]]:
    scopes = []
    if limits.user is not None:
        scopes.append(("user", f"user:{limits.user_id}", limits.user))
    if limits.key is not None:
        scopes.append(("key", f"key:{limits.key_prefix}", limits.key))
    return scopes


def counter_names(scope_id: str, limits: Limits, now: datetime | None = None) -> dict[str, str]:
    """The shared-state names of one scope's counters (also read by /v1/me)."""
    return _names(scope_id, period_bounds(limits.period, now)[0])


@lru_cache(maxsize=4096)
def _names(scope_id: str, label: str) -> dict[str, str]:
    return {
        "rpm": f"limits:rpm:{scope_id}",
        "tpm": f"limits:tpm:{scope_id}",
        "budget_tokens": f"limits:budget-tokens:{scope_id}:{label}",
        "budget_cost": f"limits:budget-cost:{scope_id}:{label}",
        "concurrent": f"limits:slots:{scope_id}",
    }


async def _check_scope(
    admission: Admission, scope: str, scope_id: str, limits: Limits, estimate: int
) -> None:
    state = admission.state
    names = counter_names(scope_id, limits)
    who = f"this {scope}"
    if limits.rpm is not None:
        count = await state.hit(names["rpm"], MINUTE, 1, limits.rpm)
        if not count.allowed:
            message = f"Rate limit of {who}: {limits.rpm} requests per minute; {_when(count.reset_at)}."
            raise _refusal(message, "rate_limit_requests", count.reset_at)
        admission.reservations.append(Reservation(names["rpm"], MINUTE, 1, count.reset_at, "requests"))
    if limits.tpm is not None:
        count = await state.hit(names["tpm"], MINUTE, estimate, limits.tpm)
        if not count.allowed:
            message = (
                f"Rate limit of {who}: {limits.tpm} tokens per minute ({count.total} used, this request "
                f"needs about {estimate}); {_when(count.reset_at)}."
            )
            raise _refusal(message, "rate_limit_tokens", count.reset_at)
        admission.reservations.append(Reservation(names["tpm"], MINUTE, estimate, count.reset_at, "tokens"))
    if limits.budget_tokens is not None or limits.budget_micro_usd is not None:
        await _check_budget(admission, who, names, limits, estimate)
    if limits.concurrent is not None:
        token = await state.acquire_slot(
            names["concurrent"], limits.concurrent, cached_settings.CCSITE_LIMIT_SLOT_SECONDS
        )
        if token is None:
            message = (
                f"Concurrency limit of {who}: {limits.concurrent} requests at once; "
                "retry when one of them has finished."
            )
            raise _refusal(message, "rate_limit_concurrency", time.time() + CONCURRENCY_RETRY_SECONDS)
        admission.slots.append((names["concurrent"], token))
        held_slots.hold(state, names["concurrent"], token)


async def _check_budget(
    admission: Admission, who: str, names: dict[str, str], limits: Limits, estimate: int
) -> None:
    reset_at = period_bounds(limits.period)[2].timestamp()
    expires_at = reset_at + BUDGET_GRACE_SECONDS
    budgets = []
    if limits.budget_tokens is not None:
        budgets.append((names["budget_tokens"], limits.budget_tokens, estimate, "tokens"))
    if limits.budget_micro_usd is not None:
        cost = max(1, cost_micro_usd(admission.model, Usage(input_tokens=estimate)))
        budgets.append((names["budget_cost"], limits.budget_micro_usd, cost, "cost"))
    for name, limit, amount, kind in budgets:
        count = await admission.state.hit(name, FOREVER, amount, limit, expires_at=expires_at)
        if not count.allowed:
            shown = f"{limit} tokens" if kind == "tokens" else f"{usd_text(limit)} USD (estimated)"
            message = f"Budget of {who} used up: {shown} per {limits.period}; {_when(reset_at)}."
            raise _refusal(message, "budget_exhausted", reset_at, quota=True)
        admission.reservations.append(Reservation(name, FOREVER, amount, reset_at, kind, expires_at))


def check_model(limits: KeyLimits | None, client_model: str, upstream_model: str) -> None:
    """Raise LimitRefused (403 ``model_not_allowed``) when the key may not use the model.

    ``client_model`` is the name the client sent (an id, an alias), ``upstream_model`` the
    catalog id it resolved to: either one matching the key's allowed models admits it.
    Generation and ``GET /v1/models/{id}`` refuse with the same error.
    """
    rule = limits.models if limits is not None else None
    if rule is not None and not rule.allows(client_model, upstream_model):
        allowed = ", ".join(rule.patterns)
        message = f"The model {client_model!r} is not allowed for this key (allowed: {allowed})."
        raise LimitRefused(ClientError(PERMISSION, message, code="model_not_allowed"))


async def admit(
    limits: KeyLimits, *, client_model: str, upstream_model: str, estimated_input_tokens: int
) -> Admission:
    """Check every limit of the key and its user; hold what was taken, or raise LimitRefused."""
    check_model(limits, client_model, upstream_model)
    admission = Admission(shared_state(), upstream_model)
    estimate = max(1, estimated_input_tokens)
    try:
        for scope, scope_id, scope_limits in _scopes(limits):
            await _check_scope(admission, scope, scope_id, scope_limits, estimate)
    except BaseException:
        await asyncio.shield(admission.undo())
        raise
    return admission


_pending: set[asyncio.Task[None]] = set()


def settle_later(admission: Admission, usage: Usage | None) -> None:
    """Settle from a synchronous outcome recorder without blocking the response's finally:
    at once when the state needs no I/O (process memory), else in a background task."""
    if is_immediate(admission.state):
        run_now(_settle(admission, usage))  # _settle logs its own failures
        return
    task = asyncio.get_running_loop().create_task(_settle(admission, usage))
    _pending.add(task)
    task.add_done_callback(_pending.discard)


async def _settle(admission: Admission, usage: Usage | None) -> None:
    try:
        await admission.settle(usage)
    except Exception:  # Redis away: the slot expires by itself, the counters stay estimates
        logger.exception("could not settle a request's limits")


async def settle() -> None:
    """Finish the settlements in flight and stop renewing slots (shutdown, tests)."""
    if _pending:
        await asyncio.gather(*list(_pending), return_exceptions=True)
    await held_slots.stop()


def limits_recorder(outcome: RequestOutcome) -> None:
    """The outcome recorder that settles each admitted request when it ends, however it ends."""
    admission = outcome.admission
    if admission is not None:
        outcome.admission = None
        usage = outcome.usage
        if usage is None and not outcome.reached_upstream:
            usage = Usage()  # nothing was generated: the reserved estimate is given back
        settle_later(admission, usage)


_installed = False


def install() -> None:
    """Subscribe the recorder to finished requests (from the app's ready(); idempotent)."""
    global _installed
    if not _installed:
        outcomes.add_recorder(limits_recorder)
        _installed = True
