"""What operators see of each upstream credential: its row plus live routing state.

``credential_report()`` is the one selector behind the admin list and ``manage.py credentials
list``: state (``ready``, ``cooling``, ``half-open``, ``disabled``), cooldown reason and until
when, requests in flight now, last error, last use and the billing snapshot. Live values come
from the shared state (so with ``REDIS_URL`` every process sees every process's in-flight
requests and cooldowns); without Redis, a separate process (a command) sees the cooldown the
gateway last persisted and ``in_flight`` is ``None`` (unknown).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from asgiref.sync import async_to_sync, sync_to_async
from django.conf import settings

from accounts.models import UpstreamCredential
from ccsite.sharedstate import SharedState, shared_state
from proxy import routing


def _iso(value: float | datetime | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _state_of(row: UpstreamCredential, live: dict[str, Any], cooling_until: float | None) -> str:
    if not row.enabled:
        return "disabled"
    if cooling_until is not None and cooling_until > time.time():
        return "cooling"
    if live.get("half_open"):
        return "half-open"
    return "ready"


async def credential_report(
    state: SharedState | None = None, *, in_gateway: bool = False
) -> list[dict[str, Any]]:
    """One dict per credential, ordered by label (JSON-ready; no secret, only the last 4)."""
    state = state or shared_state()
    rows = await sync_to_async(lambda: list(UpstreamCredential.objects.order_by("label")))()
    live_states = await routing.credential_states(state)
    shared = in_gateway or bool(settings.REDIS_URL)
    report = []
    for row in rows:
        live = live_states.get(row.pk, {})
        cooling_until = live.get("cooling_until") if shared else None
        reason = live.get("cooling_reason") if shared else ""
        if cooling_until is None and row.cooldown_until is not None:
            cooling_until, reason = row.cooldown_until.timestamp(), row.cooldown_reason
        if cooling_until is not None and cooling_until <= time.time():
            cooling_until, reason = None, ""
        report.append(
            {
                "id": row.pk,
                "label": row.label,
                "key": row.masked_secret,
                "state": _state_of(row, live, cooling_until),
                "enabled": row.enabled,
                "disabled_reason": row.disabled_reason,
                "weight": row.weight,
                "max_concurrent": row.max_concurrent,
                "allowed_models": list(row.allowed_models or []),
                "cooldown_until": _iso(cooling_until),
                "cooldown_reason": reason or "",
                "in_flight": live.get("in_flight") if shared else None,
                "last_error": row.last_error,
                "last_error_at": _iso(row.last_error_at),
                "last_used_at": _iso(row.last_used_at),
                "billing": row.billing or {},
                "billing_refreshed_at": _iso(row.billing_refreshed_at),
            }
        )
    return report


def credential_report_sync(*, in_gateway: bool = False) -> list[dict[str, Any]]:
    return async_to_sync(credential_report)(in_gateway=in_gateway)
