"""Live refresh of the catalog from the upstream's ``GET /provider/v1/models`` (protocol §13).

``refresh(trigger)`` (sync) fetches the list with an enabled upstream credential (the list is
public, so without one it asks unauthenticated), then: ids not in the catalog are added
(source ``live``, enabled per CCSITE_MODELS_NEW_ENABLED); known ids get ``last_seen_upstream``;
builtin/live models absent from the list are marked ``missing_upstream`` (never deleted).
A failed fetch changes nothing and is recorded with its reason. Every run leaves one
``RefreshRecord``. Runs on a schedule in the gateway process (CCSITE_MODELS_REFRESH_SECONDS,
default hourly; 0 = off), by the admin action and by ``manage.py models refresh``.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

import httpx
from django.conf import settings
from django.db import close_old_connections, transaction
from django.utils import timezone

from accounts.crypto import CredentialDecryptError, decrypt_secret
from accounts.selectors import credentials_enabled
from catalog.models import Model, RefreshRecord
from catalog.services import changed
from ccsite import invalidation
from ccsite.dbthreads import off_loop
from proxy.upstream.outbound import outbound_client_options

logger = logging.getLogger(__name__)

MODELS_PATH = "/provider/v1/models"


class RefreshFailed(Exception):
    """The upstream list could not be fetched or read; the message says why."""


def _api_key() -> str | None:
    for row in credentials_enabled():
        try:
            return decrypt_secret(row.secret_encrypted)
        except CredentialDecryptError:
            continue
    return None


def fetch_live_list() -> list[dict[str, Any]]:
    """The upstream's entries ``{id, name?, context_length?, ...}``; RefreshFailed otherwise."""
    headers = {"User-Agent": "cli", "accept": "application/json"}
    api_key = _api_key()
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    url = settings.CC_UPSTREAM_BASE_URL + MODELS_PATH
    try:
        # The one outbound rule (CC_UPSTREAM_PROXY, HTTPS_PROXY/HTTP_PROXY, NO_PROXY).
        options = outbound_client_options(url, timeout=settings.CCSITE_MODELS_REFRESH_TIMEOUT)
        response = httpx.get(url, headers=headers, **options)
    except httpx.HTTPError as exc:
        # The URL tried (CC_UPSTREAM_BASE_URL: .env or the environment), so a wrong one shows.
        raise RefreshFailed(f"cannot reach {url}: {type(exc).__name__}: {exc}") from None
    if response.status_code != 200:
        raise RefreshFailed(f"HTTP {response.status_code} from {url}: {response.text[:200]}")
    try:
        data = response.json()["data"]
    except (ValueError, KeyError, TypeError):
        raise RefreshFailed("the answer is not a model list ({object, data: [...]})") from None
    if not isinstance(data, list):
        raise RefreshFailed("the answer's data is not a list")
    entries = [entry for entry in data if isinstance(entry, dict) and isinstance(entry.get("id"), str)]
    if data and not entries:
        raise RefreshFailed("the list has no entries with an id")
    return entries


def _context(entry: dict[str, Any]) -> int:
    value = entry.get("context_length")
    return value if isinstance(value, int) and value > 0 else 200_000


def _apply(entries: list[dict[str, Any]], record: RefreshRecord) -> None:
    now = timezone.now()
    listed = {entry["id"]: entry for entry in entries}
    known = {row.upstream_id: row for row in Model.objects.all()}
    new = [
        Model(
            upstream_id=model_id,
            display_name=str(entry.get("name") or model_id)[:200],
            enabled=settings.CCSITE_MODELS_NEW_ENABLED,
            context_window=_context(entry),
            source=Model.Source.LIVE,
            first_seen_upstream=now,
            last_seen_upstream=now,
        )
        for model_id, entry in listed.items()
        if model_id not in known
    ]
    Model.objects.bulk_create(new)
    returned = [model_id for model_id, row in known.items() if model_id in listed and row.missing_upstream]
    vanished = [
        model_id
        for model_id, row in known.items()
        if model_id not in listed and not row.missing_upstream and row.source != Model.Source.MANUAL
    ]
    seen = Model.objects.filter(upstream_id__in=[model_id for model_id in listed if model_id in known])
    seen.update(last_seen_upstream=now, missing_upstream=False)
    seen.filter(first_seen_upstream__isnull=True).update(first_seen_upstream=now)
    Model.objects.filter(upstream_id__in=vanished).update(missing_upstream=True)
    record.added = sorted(listed.keys() - known.keys())
    record.vanished, record.returned, record.listed = sorted(vanished), sorted(returned), len(listed)


def refresh(trigger: str) -> RefreshRecord:
    """Fetch and apply the live list; the record says what changed or why it failed."""
    record = RefreshRecord(trigger=trigger)
    try:
        entries = fetch_live_list()
    except RefreshFailed as exc:
        record.ok, record.error = False, str(exc)[:500]
        record.save()
        logger.warning("model list refresh failed (kept the last list): %s", record.error)
        return record
    with transaction.atomic():
        _apply(entries, record)
        record.ok = True
        record.save()
        if record.added or record.vanished or record.returned:
            changed()
    return record


def _due_in() -> float:
    """Seconds until the next scheduled refresh, counting runs made by any process."""
    interval = settings.CCSITE_MODELS_REFRESH_SECONDS
    last = RefreshRecord.objects.order_by("-started_at").values_list("started_at", flat=True).first()
    if last is None:
        return 0.0
    return max(0.0, (last + timedelta(seconds=interval) - timezone.now()).total_seconds())


def _scheduled_step() -> float:
    close_old_connections()
    wait = _due_in()
    if wait <= 0:
        refresh("schedule")
        wait = settings.CCSITE_MODELS_REFRESH_SECONDS
    return wait


async def refresh_forever() -> None:
    while True:
        try:
            wait = await off_loop(_scheduled_step)()
        except Exception:
            logger.exception("scheduled model list refresh failed")
            wait = settings.CCSITE_MODELS_REFRESH_SECONDS
        await asyncio.sleep(max(wait, 1.0))


def install() -> None:
    if settings.CCSITE_MODELS_REFRESH_SECONDS > 0:
        invalidation.on_start(refresh_forever)
