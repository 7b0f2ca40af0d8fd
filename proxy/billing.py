"""Billing snapshots per upstream credential, and the low-balance webhook (protocol §11).

``refresh_billing(ids)`` reads ``/alpha/whoami``, ``/alpha/billing/credits``,
``/alpha/billing/subscriptions`` and ``/alpha/usage/summary`` with each key and stores one
snapshot on the credential (``UpstreamCredential.billing``)::

    {"plan": "individual-max", "status": "active", "user": "name",
     "credits_remaining": 150.0,            # monthly + purchased + free credits, USD
     "monthly_credits": 150.0, "purchased_credits": 0.0, "free_credits": 0.0,
     "below_threshold": false, "period_end": 1767225600.0, "period_end_iso": "...Z",
     "windows": {...windowLimits as sent...}, "usage": {"total_count": 3, "total_cost": 0.0},
     "error": ""}

A failed call is recorded in ``error`` (earlier numbers are kept) and never raises. Routing
reads ``credits_remaining`` and ``period_end`` (``daily_burn``, ``balance_priority``, and a key
out of credit is skipped until its period renews). ``CCSITE_BILLING_REFRESH_SECONDS`` > 0
refreshes in the background of the gateway; the admin action and ``manage.py credentials
refresh`` do it on demand. With ``CCSITE_LOW_BALANCE_WEBHOOK_URL`` and
``CCSITE_LOW_BALANCE_THRESHOLD`` (USD), a snapshot whose credit falls below the threshold
POSTs ``{"event": "credential.low_balance", "credential": label, "credits_remaining": x,
"threshold": t, "plan": ..., "period_end": iso}`` once per crossing (again only after the
balance went back above it). HTTP goes through httpx with the one outbound rule
(proxy/upstream/outbound.py: ``CC_UPSTREAM_PROXY``, ``HTTPS_PROXY``/``HTTP_PROXY``,
``NO_PROXY``), decided for the upstream and for the webhook's own host separately.

The scheduled refresh starts with the gateway process (``ccsite.invalidation.on_start``).
With several processes sharing Redis, one of them refreshes per period (a shared claim), so
the webhook is not sent once per process.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

import httpx
from asgiref.sync import async_to_sync, sync_to_async
from django.conf import settings
from django.utils import timezone

from accounts.crypto import CredentialDecryptError, decrypt_secret
from accounts.models import UpstreamCredential
from proxy.upstream.outbound import outbound_client_options
from proxy.upstream.version import cli_version

logger = logging.getLogger(__name__)

PATHS = {
    "whoami": "/alpha/whoami",
    "credits": "/alpha/billing/credits",
    "subscriptions": "/alpha/billing/subscriptions",
    "usage": "/alpha/usage/summary",
}


def _headers(api_key: str) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {api_key}",
        "User-Agent": "cli",
        "x-command-code-version": cli_version(),
        "x-cli-environment": "production",
        "accept": "application/json",
    }


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _epoch(value: Any) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def snapshot_from(answers: dict[str, Any], previous: dict[str, Any] | None = None) -> dict[str, Any]:
    """The stored snapshot from the four answers (missing or odd fields tolerated, §11)."""
    snap: dict[str, Any] = dict(previous or {})
    whoami = answers.get("whoami") or {}
    user = whoami.get("user") if isinstance(whoami, dict) else None
    if isinstance(user, dict):
        snap["user"] = user.get("userName") or user.get("name") or ""
    credits_answer = answers.get("credits") or {}
    credits = credits_answer.get("credits") if isinstance(credits_answer, dict) else None
    if isinstance(credits, dict):
        parts = {k: _number(credits.get(k)) for k in ("monthlyCredits", "purchasedCredits", "freeCredits")}
        snap["monthly_credits"] = parts["monthlyCredits"]
        snap["purchased_credits"] = parts["purchasedCredits"]
        snap["free_credits"] = parts["freeCredits"]
        known = [v for v in parts.values() if v is not None]
        snap["credits_remaining"] = sum(known) if known else None
        snap["below_threshold"] = bool(credits.get("belowThreshold"))
        if credits.get("planId"):
            snap["plan"] = credits["planId"]
    if isinstance(credits_answer, dict) and isinstance(credits_answer.get("windowLimits"), dict):
        snap["windows"] = credits_answer["windowLimits"]
    subscription = (answers.get("subscriptions") or {}).get("data")
    if isinstance(subscription, dict):
        snap["plan"] = subscription.get("planId") or snap.get("plan")
        snap["status"] = subscription.get("status") or ""
        period_end = _epoch(subscription.get("currentPeriodEnd"))
        snap["period_end"] = period_end
        snap["period_end_iso"] = subscription.get("currentPeriodEnd")
    usage = answers.get("usage") or {}
    if isinstance(usage, dict) and "totalCount" in usage:
        snap["usage"] = {
            "total_count": usage.get("totalCount"),
            "total_cost": _number(usage.get("totalCost")),
        }
    return snap


async def _fetch(client: httpx.AsyncClient, api_key: str) -> tuple[dict[str, Any], list[str]]:
    answers: dict[str, Any] = {}
    errors: list[str] = []
    base = settings.CC_UPSTREAM_BASE_URL

    async def one(name: str, path: str) -> None:
        try:
            response = await client.get(base + path, headers=_headers(api_key))
            if response.status_code != 200:
                errors.append(f"{base}{path} -> HTTP {response.status_code}")
                return
            answers[name] = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            # The URL tried (CC_UPSTREAM_BASE_URL: .env or the environment), so a wrong one shows.
            errors.append(f"{base}{path}: {type(exc).__name__}")

    await asyncio.gather(*(one(name, path) for name, path in PATHS.items()))
    return answers, errors


def _rows(ids: list[int] | None) -> list[UpstreamCredential]:
    query = UpstreamCredential.objects.order_by("label")
    return list(query.filter(pk__in=ids) if ids is not None else query)


def _save(row: UpstreamCredential, snap: dict[str, Any], refreshed: bool) -> None:
    fields: dict[str, Any] = {"billing": snap}
    if refreshed:
        fields["billing_refreshed_at"] = timezone.now()
    UpstreamCredential.objects.filter(pk=row.pk).update(**fields)


async def refresh_billing(ids: list[int] | None = None) -> dict[str, str]:
    """Refresh the snapshots of ``ids`` (all when None); returns label -> error ("" = ok)."""
    rows = await sync_to_async(_rows)(ids)
    results: dict[str, str] = {}
    async with httpx.AsyncClient(
        **outbound_client_options(timeout=settings.CC_CONNECT_TIMEOUT + 10)
    ) as client:
        for row in rows:
            try:
                api_key = decrypt_secret(row.secret_encrypted)
            except CredentialDecryptError:
                results[row.label] = "cannot decrypt the key"
                continue
            answers, errors = await _fetch(client, api_key)
            previous = row.billing if isinstance(row.billing, dict) else {}
            snap = snapshot_from(answers, previous)
            snap["error"] = "; ".join(errors)
            await sync_to_async(_save)(row, snap, refreshed=bool(answers))
            results[row.label] = snap["error"]
            await _maybe_warn(row.label, previous, snap)
    from proxy import routing

    routing.pool.invalidate()
    return results


def refresh_billing_sync(ids: list[int] | None = None) -> dict[str, str]:
    return async_to_sync(refresh_billing)(ids)


def crossed_below(previous: dict[str, Any], snap: dict[str, Any], threshold: float) -> bool:
    """True when this snapshot is the first one below ``threshold`` (one alert per crossing)."""
    now = snap.get("credits_remaining")
    if not isinstance(now, int | float) or now >= threshold:
        return False
    before = previous.get("credits_remaining")
    return not isinstance(before, int | float) or before >= threshold


async def _maybe_warn(label: str, previous: dict[str, Any], snap: dict[str, Any]) -> None:
    url, threshold = settings.CCSITE_LOW_BALANCE_WEBHOOK_URL, settings.CCSITE_LOW_BALANCE_THRESHOLD
    if not url or threshold is None or not crossed_below(previous, snap, threshold):
        return
    payload = {
        "event": "credential.low_balance",
        "credential": label,
        "credits_remaining": snap.get("credits_remaining"),
        "threshold": threshold,
        "plan": snap.get("plan"),
        "period_end": snap.get("period_end_iso"),
        "at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    try:
        # The webhook's own host decides the proxy (an internal receiver is often in NO_PROXY).
        async with httpx.AsyncClient(**outbound_client_options(url, timeout=10.0)) as client:
            response = await client.post(url, json=payload)
        if response.status_code >= 300:
            logger.warning("low-balance webhook answered HTTP %s", response.status_code)
    except httpx.HTTPError as exc:
        logger.warning("low-balance webhook failed: %s", type(exc).__name__)


REFRESH_CLAIM = "billing:scheduled-refresh"


async def _refresh_forever() -> None:
    """The scheduled refresh (a gateway background task; CCSITE_BILLING_REFRESH_SECONDS > 0)."""
    from ccsite.sharedstate import shared_state

    every = settings.CCSITE_BILLING_REFRESH_SECONDS
    if every <= 0:
        return
    while True:
        try:
            # One process per period does it (shared through Redis when REDIS_URL is set).
            if await shared_state().claim(REFRESH_CLAIM, every * 0.9):
                await refresh_billing()
        except Exception:
            logger.exception("scheduled billing refresh failed")
        await asyncio.sleep(every)


def install() -> None:
    """Start the scheduled refresh with each gateway process (proxy.apps.ProxyConfig.ready)."""
    from ccsite import invalidation

    invalidation.on_start(_refresh_forever)
