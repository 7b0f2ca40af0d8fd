"""Which upstream credential serves a request: eligibility, policy, failover, cooldowns, slots.

Credentials are kept decrypted in memory (``CredentialPool``), so choosing one costs no query:
a signalled change is loaded before the next request routes, and a snapshot older than
CCSITE_CREDENTIAL_CACHE_SECONDS is re-read in the background while it keeps serving. What
several processes must agree on lives in the shared state (ccsite/sharedstate.py; Redis when
REDIS_URL is set), under these names:

``route:cool:<id>``          the key is cooling down until T (reason: why)
``route:model:<id>:<model>`` the key's plan refused this model (402/403) until T
``route:probe:<id>``         the key failed transiently: after its cooldown one trial decides
``route:trial:<id>``         the claim of the one request making that trial (half-open)
``route:fails:<id>``         consecutive transient failures (growing backoff)
``route:slots:<id>``         concurrency slots: in flight now, capped by max_concurrent
``route:rr``                 the round-robin position
``route:aff:<session>``      the key a conversation used last (session affinity)

Eligible: enabled, allowed for the model, not cooling, not excluded for the model, not out of
credit (billing snapshot) and with a free slot. A key cooling after a transient failure only
(plain 429, 5xx, timeout, network) is the last resort rather than excluded: when no eligible
key can take the request it is tried anyway (soonest cooled off first), and its success ends
the cooldown, so a team with one key never gets 429s from the gateway while the upstream may be
healthy. Hard states (disabled, 401, plan gating, usage window until its reset, out of credit)
always exclude. The policy is ``proxy.routing_settings.policy()``: the admin's override of
CCSITE_ROUTING_POLICY, from an in-process snapshot. ``max_concurrent`` is enforced by refusing:
when every otherwise eligible key is at its cap the request gets 429 with ``Retry-After: 1``
(never queued, so a client's own retry logic applies). Slots are renewed while held and
expire after CCSITE_ROUTING_SLOT_TTL seconds otherwise.

The upstream client's classification (proxy/translate/failures.py) drives every reaction:
401 disables the key and records why; 402/403 plan gating excludes the model on that key
for CCSITE_ROUTING_MODEL_EXCLUSION_SECONDS; a 429 usage window cools the key until the
reset the upstream gave; credits exhausted cool it until its billing period renews (or an
hour); other 429s, 5xx, network errors and timeouts cool it for base * 2^(n-1) seconds, then
one trial request (half-open) decides. A failure before any visible output moves the request
to the next eligible key (at most CCSITE_ROUTING_MAX_FAILOVERS times, same body); after the
first byte nothing is retried (proxy/upstream/stream.py).

With no eligible key the client learns why: none configured -> 503; all disabled -> 503;
none allowed for the model -> 403; all hard-cooling (usage window, credits) until T -> 429
with Retry-After; all at their concurrency cap -> 429 with Retry-After: 1.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from asgiref.sync import async_to_sync, sync_to_async
from django.db import DatabaseError

from accounts.crypto import CredentialDecryptError, decrypt_secret
from accounts.keycache import KeyPrincipal
from accounts.models import UpstreamCredential
from ccsite import invalidation
from ccsite.settings_cache import cached_settings
from ccsite.sharedstate import HeldSlots, SharedState, Until, is_immediate, run_now, shared_state
from proxy import credential_writer, metrics, routing_policies, routing_settings
from proxy.auth import PassthroughPrincipal
from proxy.outcomes import RequestOutcome
from proxy.translate.errors import PERMISSION, RATE_LIMIT, UNAVAILABLE, ClientError, FailedResponse
from proxy.translate.failures import CREDENTIAL_KINDS, FailureKind, UpstreamFailure
from proxy.translate.wire import UpstreamRequest
from proxy.upstream.commandcode import Credential, UpstreamStream, open_stream

logger = logging.getLogger(__name__)

NO_CREDENTIAL = ClientError(
    UNAVAILABLE,
    "No upstream Command Code credential is configured; an operator must add one.",
    code="no_upstream_credential",
)
TRIAL_SECONDS = 60.0  # a half-open trial that never reports frees its claim after this
PROBE_SECONDS = 3600.0  # how long a transient failure is remembered for the half-open trial
QUOTA_FALLBACK_SECONDS = 3600.0


@dataclass(frozen=True, slots=True)
class RoutableCredential:
    credential: Credential
    weight: int
    allowed_models: frozenset[str]
    max_concurrent: int | None = None
    enabled: bool = True
    credits_remaining: float | None = None
    period_end: float | None = None

    @property
    def id(self) -> int:
        return self.credential.id

    def serves(self, model: str) -> bool:
        return not self.allowed_models or model in self.allowed_models

    def out_of_credit(self, now: float) -> bool:
        return (
            self.credits_remaining is not None
            and self.credits_remaining <= 0
            and (self.period_end is None or self.period_end > now)
        )


def _billing_numbers(billing: dict | None) -> tuple[float | None, float | None]:
    if not isinstance(billing, dict):
        return None, None
    credits, period_end = billing.get("credits_remaining"), billing.get("period_end")
    return (
        float(credits) if isinstance(credits, int | float) else None,
        float(period_end) if isinstance(period_end, int | float) else None,
    )


def _routable(row: UpstreamCredential) -> RoutableCredential | None:
    api_key = ""
    if row.enabled:
        try:
            api_key = decrypt_secret(row.secret_encrypted)
        except CredentialDecryptError:
            logger.error("credential %s cannot be decrypted with the configured keys; skipped", row.label)
            return None
    credits, period_end = _billing_numbers(row.billing)
    return RoutableCredential(
        Credential(id=row.pk, label=row.label, api_key=api_key),
        row.weight,
        frozenset(row.allowed_models or ()),
        row.max_concurrent or None,
        row.enabled,
        credits,
        period_end,
    )


def _load_credentials() -> list[RoutableCredential]:
    rows = UpstreamCredential.objects.order_by("label")
    return [entry for entry in map(_routable, rows) if entry is not None]


class CredentialPool:
    """Every credential (enabled or not), cached per process.

    A signalled change (this process, or another through the shared mark or
    ccsite/invalidation.py) makes the next request load the rows before it routes, so the
    change applies at once. A snapshot that is merely older than
    CCSITE_CREDENTIAL_CACHE_SECONDS (billing snapshots, what routing itself persisted) keeps
    serving while a background task re-reads it: no request waits for the database for that.
    CCSITE_CREDENTIAL_CACHE_SECONDS = 0 reads on every request (tests that change rows freely).
    """

    def __init__(self) -> None:
        # Replaced on every change, never changed in place: routing keeps what it derives from
        # a snapshot for as long as this list is the same object (_Routes).
        self._credentials: list[RoutableCredential] = []
        self._loaded_at = float("-inf")
        # Disabled by routing here, until the database shows it (the write is queued).
        self._disabling: set[int] = set()
        self._checked_at = float("-inf")
        self._change_token = ""
        # Bumped by every change signal: a load that began before one must not win over it.
        self._generation = 0
        self._refreshing: asyncio.Task[None] | None = None
        self._loading: asyncio.Task[bool] | None = None

    async def all(self) -> list[RoutableCredential]:
        now = time.monotonic()
        if now - self._checked_at > CHANGE_CHECK_SECONDS:
            # Another process changed credentials (admin, command): reload within ~1 s.
            self._checked_at = now
            mark = await shared_state().get_until(CHANGED)
            token = mark.reason if mark is not None else ""
            if token != self._change_token:
                self._change_token = token
                self._loaded_at = float("-inf")
                self._generation += 1
        ttl = cached_settings.CCSITE_CREDENTIAL_CACHE_SECONDS
        if self._loaded_at == float("-inf") or ttl <= 0:
            await self._load_current()
        elif now - self._loaded_at > ttl and not self._refresh_running():
            self._refreshing = _in_background(self._refresh())
        return self._credentials

    def _refresh_running(self) -> bool:
        task = self._refreshing
        return task is not None and not task.done() and task.get_loop() is asyncio.get_running_loop()

    async def _load_current(self) -> None:
        """Load rows no older than the latest change signal, one read for all waiters.

        Requests arriving together share one read (single flight). A read that a change
        signal overtook is discarded and read again, so no waiter returns the snapshot from
        before the change (or the empty one from before the first load).
        """
        while True:
            task = self._loading
            if task is None or task.done() or task.get_loop() is not asyncio.get_running_loop():
                task = self._loading = asyncio.get_running_loop().create_task(self._load())
            if await asyncio.shield(task):
                return

    async def _load(self) -> bool:
        """Read the rows; False when a change signal arrived meanwhile (the read is stale)."""
        generation = self._generation
        loaded = await sync_to_async(_load_credentials)()
        if generation != self._generation:
            return False
        self._disabling &= {entry.id for entry in loaded if entry.enabled}
        self._credentials = [self._overridden(entry) for entry in loaded]
        self._loaded_at = time.monotonic()
        return True

    async def _refresh(self) -> None:
        try:
            await self._load()
        except Exception:  # keep serving the last snapshot; the next request tries again
            logger.warning("could not re-read the upstream credentials; keeping the last ones", exc_info=True)

    def _overridden(self, entry: RoutableCredential) -> RoutableCredential:
        return replace(entry, enabled=False) if entry.id in self._disabling else entry

    def mark_disabled(self, credential_id: int) -> None:
        """Disable a key at once in this process (the database write follows)."""
        self._disabling.add(credential_id)
        self._credentials = [self._overridden(entry) for entry in self._credentials]

    def invalidate(self) -> None:
        self._loaded_at = float("-inf")
        self._checked_at = float("-inf")
        self._generation += 1


pool = CredentialPool()
INVALIDATION_NAME = "credentials"  # ccsite/invalidation.py
# The shared mark of the last credential change; its reason is a fresh token per change.
CHANGED = "route:credentials-changed"
CHANGE_CHECK_SECONDS = 0.5


async def announce_change() -> None:
    """Tell every process (through the shared state) to reload credentials."""
    await shared_state().set_until(CHANGED, time.time() + 30 * 86400, uuid.uuid4().hex)


def _cool(credential_id: int) -> str:
    return f"route:cool:{credential_id}"


def _model(credential_id: int, model: str) -> str:
    return f"route:model:{credential_id}:{model}"


def _probe(credential_id: int) -> str:
    return f"route:probe:{credential_id}"


def _trial(credential_id: int) -> str:
    return f"route:trial:{credential_id}"


def _slots(credential_id: int) -> str:
    return f"route:slots:{credential_id}"


def _affinity(session: str) -> str:
    return f"route:aff:{session}"


# Slots held by this process, renewed in the background so long streams keep theirs.
held_slots = HeldSlots(lambda: cached_settings.CCSITE_ROUTING_SLOT_TTL)


_background: set[asyncio.Task[None]] = set()


def _off_the_path(state: SharedState, coroutine: Coroutine[Any, Any, None]) -> None:
    """A state update the response does not wait for: done at once when it needs no I/O
    (process memory: no task per request), else in a background task (Redis)."""
    if not is_immediate(state):
        _in_background(coroutine)
        return
    try:
        run_now(coroutine)
    except Exception:
        logger.warning("a routing state update failed", exc_info=True)


def _in_background(coroutine: object) -> asyncio.Task[None]:
    task = asyncio.get_running_loop().create_task(coroutine)  # type: ignore[arg-type]
    _background.add(task)
    task.add_done_callback(_background.discard)
    return task


def _state_names(entries: list[RoutableCredential], model: str) -> list[str]:
    """The shared-state names ``_screen`` reads, three per entry: cooldown, model block, probe."""
    return [
        name for entry in entries for name in (_cool(entry.id), _model(entry.id, model), _probe(entry.id))
    ]


# An order is kept per position only while a rotation is this short (weights are unbounded).
_MAX_KEPT_ORDERS = 1024


@dataclass(slots=True)
class _ModelRoute:
    """What every pick for a model reads of one credential snapshot and does not change until
    the next: made once per snapshot and model instead of per request."""

    snapshot: dict[int, RoutableCredential]  # every credential of the snapshot, by id
    enabled: int
    allowed: list[RoutableCredential]  # enabled and serving the model, in the snapshot's order
    names: list[str]  # _state_names(allowed)
    by_id: dict[int, RoutableCredential]  # allowed, by id
    candidates: list[routing_policies.Candidate]  # allowed, nothing in flight
    # The policy's order of ``allowed`` when all of them are ready, per (policy, position %
    # period): what routing_policies.order gives for those, kept (never changed by callers).
    orders: dict[tuple[str, int], list[RoutableCredential]] = field(default_factory=dict)
    periods: dict[str, int | None] = field(default_factory=dict)

    @classmethod
    def of(
        cls, snapshot: dict[int, RoutableCredential], entries: list[RoutableCredential], model: str
    ) -> _ModelRoute:
        enabled = [entry for entry in entries if entry.enabled]
        allowed = [entry for entry in enabled if entry.serves(model)]
        return cls(
            snapshot,
            len(enabled),
            allowed,
            _state_names(allowed, model),
            {entry.id: entry for entry in allowed},
            [_candidate(entry, 0) for entry in allowed],
        )

    def period(self, policy: str) -> int | None:
        if policy not in self.periods:
            self.periods[policy] = routing_policies.period(policy, self.candidates)
        return self.periods[policy]


class _Routes:
    """The ``_ModelRoute`` of each model for the latest snapshot. The pool replaces its list on
    every change (never changes it in place), so the list's identity tells a new snapshot."""

    MAX_MODELS = 256  # a bound, not a tuning: models come from requests

    def __init__(self) -> None:
        # (the snapshot's list, its credentials by id, its routes by model), replaced as one:
        # a thread never files one snapshot's route under another's list.
        self._latest: tuple[list[RoutableCredential], dict[int, RoutableCredential], dict[str, _ModelRoute]]
        self._latest = ([], {}, {})

    def get(self, entries: list[RoutableCredential], model: str) -> _ModelRoute:
        latest = self._latest
        if latest[0] is not entries:
            latest = self._latest = (entries, {entry.id: entry for entry in entries}, {})
        _, snapshot, by_model = latest
        route = by_model.get(model)
        if route is None:
            if len(by_model) >= self.MAX_MODELS:
                by_model.clear()
            route = by_model[model] = _ModelRoute.of(snapshot, entries, model)
        return route


_routes = _Routes()


@dataclass(slots=True)
class _Screened:
    """Candidates for one pick, and why the others were left out."""

    route: _ModelRoute
    ready: list[RoutableCredential] = field(default_factory=list)
    half_open: set[int] = field(default_factory=set)
    # Cooling after a transient failure only (a plain 429, 5xx, timeout, network error): the
    # last resort when no ready key has a slot, soonest-cooled-off first.
    soft_cooling: list[RoutableCredential] = field(default_factory=list)
    configured: int = 0
    enabled: int = 0
    allowed: int = 0
    cooling_until: float | None = None
    # Every key the route allows is ready (none excluded, blocked or cooling): the route's
    # kept orders apply.
    all_ready: bool = False


async def _screen(
    state: SharedState, entries: list[RoutableCredential], model: str, exclude: set[int]
) -> _Screened:
    route = _routes.get(entries, model)
    screened = _Screened(route, configured=len(entries), enabled=route.enabled)
    allowed, names = route.allowed, route.names
    if exclude:
        allowed = [entry for entry in allowed if entry.id not in exclude]
        names = _state_names(allowed, model)
    values = await state.get_many_until(names)
    now = time.time()
    soft: list[tuple[float, RoutableCredential]] = []
    for index, entry in enumerate(allowed):
        cool, model_block, probe = values[3 * index : 3 * index + 3]
        if model_block is not None:
            continue
        screened.allowed += 1
        blocked_until = cool.until if cool is not None else None
        out_of_credit = entry.out_of_credit(now)
        if out_of_credit:
            blocked_until = max(blocked_until or 0.0, entry.period_end or now + QUOTA_FALLBACK_SECONDS)
        if blocked_until is not None:
            if screened.cooling_until is None or blocked_until < screened.cooling_until:
                screened.cooling_until = blocked_until
            # A transient cooldown carries a probe; hard ones (window, credits, 401) clear it.
            if probe is not None and not out_of_credit:
                soft.append((blocked_until, entry))
            continue
        if probe is not None:
            screened.half_open.add(entry.id)
        screened.ready.append(entry)
    screened.soft_cooling = [entry for _, entry in sorted(soft, key=lambda pair: pair[0])]
    screened.all_ready = len(screened.ready) == len(route.allowed)
    return screened


def _no_eligible_error(screened: _Screened, model: str, busy: bool) -> ClientError:
    if screened.configured == 0:
        return NO_CREDENTIAL
    if screened.enabled == 0:
        return ClientError(
            UNAVAILABLE,
            f"All {screened.configured} upstream Command Code credentials are disabled; "
            "an operator must enable or replace one.",
            code="upstream_credentials_disabled",
        )
    if screened.allowed == 0:
        return ClientError(
            PERMISSION,
            f"No upstream Command Code credential is allowed to serve the model {model!r}.",
            code="model_not_allowed_on_any_credential",
        )
    if busy:
        return ClientError(
            RATE_LIMIT,
            "Every upstream Command Code credential is at its concurrency limit; retry shortly.",
            code="upstream_credentials_busy",
            retry_after=1.0,
        )
    until = screened.cooling_until or time.time() + 1
    when = datetime.fromtimestamp(until, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return ClientError(
        RATE_LIMIT,
        f"Every upstream Command Code credential for this model is cooling down until {when}.",
        code="upstream_credentials_cooling",
        retry_after=max(1.0, until - time.time()),
    )


def _ordered(
    by_id: dict[int, RoutableCredential],
    policy: str,
    candidates: list[routing_policies.Candidate],
    position: int,
) -> list[RoutableCredential]:
    ordering = routing_policies.order(policy, candidates, position=position, now=time.time())
    return [by_id[candidate.id] for candidate in ordering]


def _kept_order(
    route: _ModelRoute, policy: str, candidates: list[routing_policies.Candidate], position: int
) -> list[RoutableCredential]:
    """The policy's order of all the route's keys (``candidates``), made once per position in
    its period (a round-robin rotation: the same few orders over and over) when the position is
    all it depends on; made for this request otherwise (in-flight counts, the time)."""
    period = route.period(policy)
    if period is None or period > _MAX_KEPT_ORDERS:
        return _ordered(route.by_id, policy, candidates, position)
    key = (policy, position % period)
    ordered = route.orders.get(key)
    if ordered is None:
        ordered = route.orders[key] = _ordered(route.by_id, policy, route.candidates, position)
    return ordered


class RoutingChooser:
    """One request's routing: the first pick, failovers, reports, and its concurrency slot.

    Implements proxy.upstream.credentials.CredentialChooser.
    """

    def __init__(
        self, model: str, session: str, outcome: RequestOutcome | None, state: SharedState | None = None
    ) -> None:
        self.model = model
        self.session = session
        self.outcome = outcome
        self.state = state or shared_state()
        self.failovers = 0
        self._tried: set[int] = set()
        self._slot: tuple[str, str] | None = None
        self._slot_label = ""  # the credential whose slot is held (the in-flight gauge)
        self._half_open: set[int] = set()
        # Keys used although cooling (no other key could serve): a success ends the cooldown.
        self._last_resort: set[int] = set()
        self._entries: dict[int, RoutableCredential] = {}
        self.current: RoutableCredential | None = None
        self.last_error: ClientError | None = None

    # Picking.

    async def pick(self, exclude: set[int]) -> RoutableCredential | None:
        entries = await pool.all()
        screened = await _screen(self.state, entries, self.model, exclude)
        self._entries = screened.route.snapshot
        ordered = await self._order(screened, screened.route)
        busy = False
        in_trial: list[RoutableCredential] = []
        for entry in ordered:
            if entry.id in screened.half_open and not await self.state.claim(_trial(entry.id), TRIAL_SECONDS):
                in_trial.append(entry)  # another request is making this key's trial
                continue
            if await self._take_slot(entry):
                if entry.id in screened.half_open:
                    self._half_open.add(entry.id)
                self._use(entry)
                return entry
            busy = True
        # No ready key could take the request. A key that only failed transiently is tried
        # anyway rather than refusing: with a single key, one 5xx must not turn the next
        # minutes into 429s while the upstream may be healthy. Hard states never get here.
        for entry in in_trial + screened.soft_cooling:
            if await self._take_slot(entry):
                self._last_resort.add(entry.id)
                self._use(entry)
                return entry
            busy = True
        self.last_error = _no_eligible_error(screened, self.model, busy)
        return None

    async def _order(self, screened: _Screened, route: _ModelRoute) -> list[RoutableCredential]:
        """The ready keys best first (the result is not to be changed: it may be kept)."""
        ready = screened.ready
        if not ready:
            return []
        policy = routing_settings.policy()  # the admin's override, else the setting
        if screened.all_ready:
            candidates, by_id = route.candidates, route.by_id
        else:
            candidates = [_candidate(entry, 0) for entry in ready]
            by_id = {entry.id: entry for entry in ready}
        needs_flight = routing_policies.effective_policy(policy, candidates)
        if needs_flight == "least_in_flight":
            in_flight = [await self.state.slots_in_use(_slots(entry.id)) for entry in ready]
            candidates = [_candidate(entry, flight) for entry, flight in zip(ready, in_flight, strict=True)]
        position = await self.state.next_index("route:rr") if needs_flight == "round_robin" else 0
        if screened.all_ready:
            ordered = _kept_order(route, needs_flight, candidates, position)
        else:
            ordered = _ordered(by_id, needs_flight, candidates, position)
        if self.session:
            pinned = await self.state.get_until(_affinity(self.session))
            if pinned is not None and pinned.reason.isdigit() and int(pinned.reason) in by_id:
                first = by_id[int(pinned.reason)]
                ordered = [first] + [entry for entry in ordered if entry is not first]
        return ordered

    async def _take_slot(self, entry: RoutableCredential) -> bool:
        limit = entry.max_concurrent or 1_000_000
        name = _slots(entry.id)
        token = await self.state.acquire_slot(name, limit, cached_settings.CCSITE_ROUTING_SLOT_TTL)
        if token is None:
            return False
        self._slot = (name, token)
        self._slot_label = entry.credential.label
        metrics.child(metrics.CREDENTIAL_IN_FLIGHT, self._slot_label).inc()
        held_slots.hold(self.state, name, token)
        return True

    def _use(self, entry: RoutableCredential) -> None:
        self.current = entry
        self._tried.add(entry.id)
        if self.outcome is not None:
            self.outcome.credential_id = entry.id
            self.outcome.credential_label = entry.credential.label
            self.outcome.failovers = self.failovers

    def _release(self) -> None:
        slot, self._slot = self._slot, None
        if slot is not None:
            metrics.child(metrics.CREDENTIAL_IN_FLIGHT, self._slot_label).dec()
            held_slots.drop(slot[1])
            _off_the_path(self.state, self.state.release_slot(*slot))

    # The CredentialChooser protocol (called by the upstream client).

    async def choose(self, failed: Credential | None, failure: UpstreamFailure | None) -> Credential | None:
        if failed is None:
            return self.current.credential if self.current is not None else None
        if failure is not None and (failure.retryable or failure.kind in CREDENTIAL_KINDS):
            if self.failovers < cached_settings.CCSITE_ROUTING_MAX_FAILOVERS:
                self.failovers += 1
                entry = await self.pick(exclude=set(self._tried))
                if entry is not None:
                    return entry.credential
                self.failovers -= 1
        if failure is not None and failure.retryable and failed.id in self._entries:
            # No other key: retry this one (the client bounds retries and backs off).
            if self._slot is None and await self._take_slot(self._entries[failed.id]):
                self._last_resort.add(failed.id)  # a success ends the cooldown just set
                return failed
        return None

    async def report(self, credential: Credential, failure: UpstreamFailure | None) -> None:
        now = time.time()
        if failure is None:
            await self._succeeded(credential, now)
            return
        self._release()
        metrics.UPSTREAM_ERRORS.labels(str(failure.kind), credential.label).inc()
        await self._failed(credential, failure, now)

    def finish(self) -> None:
        """The stream ended (or the client left): give the slot back."""
        self._release()

    async def _succeeded(self, credential: Credential, now: float) -> None:
        credential_writer.note(credential.id, last_used_at=datetime.fromtimestamp(now, UTC))
        if credential.id in self._half_open or credential.id in self._last_resort:
            # The trial (or a last-resort use) succeeded: the key is healthy again. Its
            # cooldown goes only while still transient (a probe): never a hard one another
            # request set meanwhile (usage window, credits, 401).
            transient = await self.state.get_until(_probe(credential.id)) is not None
            if transient:
                await self.state.clear(_cool(credential.id))
            for name in (_probe(credential.id), _trial(credential.id), f"route:fails:{credential.id}"):
                await self.state.clear(name)
            if transient or credential.id in self._half_open:
                credential_writer.note(credential.id, cooldown_until=None, cooldown_reason="")
        if self.session:
            ttl = cached_settings.CCSITE_ROUTING_AFFINITY_SECONDS
            await self.state.set_until(_affinity(self.session), now + ttl, str(credential.id))

    async def _failed(self, credential: Credential, failure: UpstreamFailure, now: float) -> None:
        when = datetime.fromtimestamp(now, UTC)
        message = f"{failure.status or failure.code}: {failure.message}"[:300]
        credential_writer.note(credential.id, last_error=message, last_error_at=when)
        until, reason = await self._reaction(credential, failure, now)
        if until is not None:
            credential_writer.note(
                credential.id, cooldown_until=datetime.fromtimestamp(until, UTC), cooldown_reason=reason
            )
        if credential.id in self._half_open:
            await self.state.clear(_trial(credential.id))

    async def _reaction(
        self, credential: Credential, failure: UpstreamFailure, now: float
    ) -> tuple[float | None, str]:
        state, kind = self.state, failure.kind
        if kind is FailureKind.CREDENTIAL:
            reason = (
                f"refused by Command Code ({failure.status or 401}) at {datetime.now(UTC):%Y-%m-%d %H:%M}Z"
            )
            pool.mark_disabled(credential.id)
            await self._forget_transient(credential.id)
            # Other processes skip it at once, before they reload the disabled row.
            await state.set_until(_cool(credential.id), now + 86400, reason)
            credential_writer.note(credential.id, enabled=False, disabled_reason=reason)
            logger.warning("upstream credential %s disabled: %s", credential.label, reason)
            return None, ""
        if kind is FailureKind.MODEL:
            until = now + cached_settings.CCSITE_ROUTING_MODEL_EXCLUSION_SECONDS
            await state.set_until(_model(credential.id, self.model), until, f"{self.model} not in plan")
            return None, ""
        if kind is FailureKind.WINDOW:
            until = failure.reset_at or now + (
                failure.retry_after or cached_settings.CCSITE_ROUTING_COOLDOWN_MAX
            )
            reason = "usage window exhausted"
        elif kind is FailureKind.QUOTA:
            entry = self._entries.get(credential.id)
            period_end = entry.period_end if entry is not None else None
            until = period_end if period_end and period_end > now else now + QUOTA_FALLBACK_SECONDS
            reason = "credits exhausted"
        elif kind in (FailureKind.RETRYABLE, FailureKind.OVERLOADED, FailureKind.TIMEOUT):
            failures = await state.next_index(f"route:fails:{credential.id}")
            base, cap = (
                cached_settings.CCSITE_ROUTING_COOLDOWN_BASE,
                cached_settings.CCSITE_ROUTING_COOLDOWN_MAX,
            )
            until = now + min(cap, base * 2 ** min(failures - 1, 30))
            reason = f"{failure.code} (failure {failures} in a row)"
            await state.set_until(_probe(credential.id), until + PROBE_SECONDS, reason)
        else:
            return None, ""  # the request's fault, not the key's
        if kind in (FailureKind.WINDOW, FailureKind.QUOTA):
            await self._forget_transient(credential.id)  # a hard cooldown: no last resort
        await state.set_until(_cool(credential.id), float(until), reason)
        return float(until), reason

    async def _forget_transient(self, credential_id: int) -> None:
        """The probe marks a cooldown as transient (tried as a last resort); hard ones drop it."""
        await self.state.clear(_probe(credential_id))
        await self.state.clear(f"route:fails:{credential_id}")


class PassthroughChooser:
    """The client's own Command Code key: no pool, no shared state, retries on the same key."""

    def __init__(self, principal: PassthroughPrincipal, outcome: RequestOutcome | None) -> None:
        self.credential = Credential(id=0, label=principal.username, api_key=principal.upstream_key)
        if outcome is not None:
            outcome.credential_label = self.credential.label

    async def choose(self, failed: Credential | None, failure: UpstreamFailure | None) -> Credential | None:
        return self.credential if failure is None or failure.retryable else None

    async def report(self, credential: Credential, failure: UpstreamFailure | None) -> None:
        return None

    def finish(self) -> None:
        return None


def _candidate(entry: RoutableCredential, in_flight: int) -> routing_policies.Candidate:
    return routing_policies.Candidate(
        entry.id,
        entry.credential.label,
        entry.weight,
        in_flight,
        entry.credits_remaining,
        entry.period_end,
    )


async def open_upstream(
    principal: KeyPrincipal | None, request: UpstreamRequest, outcome: RequestOutcome | None = None
) -> UpstreamStream:
    """Open the upstream stream for a translated request, or raise an error the views render."""
    if isinstance(principal, PassthroughPrincipal):
        return await open_stream(request, chooser=PassthroughChooser(principal, outcome))
    chooser = RoutingChooser(request.model, request.session_hint or "", outcome)
    if await chooser.pick(exclude=set()) is None:
        raise FailedResponse(chooser.last_error or NO_CREDENTIAL)
    try:
        return await open_stream(request, chooser=chooser)
    finally:
        if outcome is not None:
            outcome.failovers = chooser.failovers


async def credential_states(state: SharedState | None = None) -> dict[int, dict[str, object]]:
    """Live routing state per credential id (admin list, ``manage.py credentials list``)."""
    state = state or shared_state()
    rows = await sync_to_async(lambda: list(UpstreamCredential.objects.values_list("pk", flat=True)))()
    result: dict[int, dict[str, object]] = {}
    for pk in rows:
        cool: Until | None = await state.get_until(_cool(pk))
        probe = await state.get_until(_probe(pk))
        result[pk] = {
            "in_flight": await state.slots_in_use(_slots(pk)),
            "cooling_until": cool.until if cool else None,
            "cooling_reason": cool.reason if cool else "",
            "half_open": probe is not None and cool is None,
        }
    return result


async def clear_credential_state(credential_id: int, state: SharedState | None = None) -> None:
    """Forget a key's cooldown and failure history (an operator re-enabled it)."""
    state = state or shared_state()
    for name in (
        _cool(credential_id),
        _probe(credential_id),
        _trial(credential_id),
        f"route:fails:{credential_id}",
    ):
        await state.clear(name)


def _credentials_changed(
    sender: object, ids: list[int] | None = None, enabled: bool | None = None, **_: object
) -> None:
    """An operator changed credentials: this process at once, the others within ~1 s."""
    pool.invalidate()
    for credential_id in (ids or ()) if enabled else ():
        _soon(clear_credential_state(credential_id))
    _announce()


def _credential_saved(sender: object, instance: UpstreamCredential, **_: object) -> None:
    pool.invalidate()
    _announce()


def _announce() -> None:
    # Two signals: the catalog's version table (every process sharing the database polls it)
    # and the shared-state mark (every process sharing Redis checks it on its next request).
    try:
        invalidation.bump(INVALIDATION_NAME)
    except DatabaseError:
        logger.warning("could not record the credential change for other processes", exc_info=True)
    _soon(announce_change())


def _soon(coroutine: Any) -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        try:
            async_to_sync(_run)(coroutine)  # a sync view or command
        except Exception:
            logger.warning("could not update the shared routing state", exc_info=True)
        return
    _in_background(coroutine)


async def _run(coroutine: Any) -> None:
    await coroutine


def install() -> None:
    """Connect routing to credential changes (proxy.apps.ProxyConfig.ready)."""
    from django.db.models.signals import post_delete, post_save

    from accounts.signals import credentials_changed

    invalidation.on_change(INVALIDATION_NAME, pool.invalidate)
    credentials_changed.connect(_credentials_changed, dispatch_uid="routing-credentials-changed")
    post_save.connect(_credential_saved, sender=UpstreamCredential, dispatch_uid="routing-credential-saved")
    post_delete.connect(
        _credential_saved, sender=UpstreamCredential, dispatch_uid="routing-credential-deleted"
    )


async def settle() -> None:
    """Finish slot releases in flight and stop the renewer (shutdown, tests)."""
    if _background:
        await asyncio.gather(*list(_background), return_exceptions=True)
    await held_slots.stop()
