"""The catalog as the hot path reads it: an in-process snapshot, no query per request.

API (hot path; no awaits, no queries once loaded)
    ``served_model(client_name) -> ModelInfo``
        The model a client's name resolves to (ids case-insensitively, short names, dated and
        ``[1m]`` suffixes, operator aliases, wildcard aliases; see ``proxy.translate.catalog``).
        Raises ``InvalidRequest`` with status 404 (``model_not_found``: names the model and says
        to list models with GET /v1/models) or 403 (``model_disabled``: disabled by the
        operator); the /v1 handlers render it in the surface's envelope.
    ``prices_for(model_id) -> Prices | None``
        Prices per million tokens of an upstream model id (input, cache read, cache write,
        output; each None when unpriced), or None for a model not in the catalog.
    ``current() -> CatalogSnapshot``
        The whole snapshot (the ``Catalog`` and the prices).

Empty tables (never seeded, or wiped) serve the seed: the builtin models and default aliases.
The snapshot is rebuilt from the database on ``bump("catalog")`` (ccsite/invalidation.py):
at once in the process that changed it, within a poll interval everywhere else. Whatever
changes a ``Model`` or a ``ModelAlias`` calls ``catalog.services.changed()``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from dataclasses import dataclass, field
from decimal import Decimal

from catalog.seed import DEFAULT_ALIASES
from ccsite import invalidation
from proxy.translate import catalog as pure
from proxy.translate.catalog import Catalog, ModelInfo
from proxy.translate.errors import InvalidRequest

CHANGE_NAME = "catalog"


@dataclass(frozen=True, slots=True)
class Prices:
    """Per million tokens; None = unpriced."""

    input: float | None
    cache_read: float | None
    cache_write: float | None
    output: float | None


@dataclass(frozen=True, slots=True)
class CatalogSnapshot:
    catalog: Catalog
    prices: dict[str, Prices] = field(default_factory=dict)


_snapshot: CatalogSnapshot | None = None


def _number(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def build() -> CatalogSnapshot:
    """Read the tables into a fresh snapshot (sync; two queries)."""
    from catalog.models import Model, ModelAlias

    models, prices = [], {}
    for row in Model.objects.all():
        created = row.first_seen_upstream or row.created_at
        models.append(
            ModelInfo(
                id=row.upstream_id,
                efforts=tuple(row.reasoning_levels or ()),
                context_window=row.context_window,
                vision=row.accepts_images,
                enabled=row.enabled,
                display_name=row.display_name or row.upstream_id,
                created=int(created.timestamp()),
            )
        )
        prices[row.upstream_id] = Prices(
            _number(row.price_input),
            _number(row.price_cache_read),
            _number(row.price_cache_write),
            _number(row.price_output),
        )
    if not models:
        # Tables never seeded or wiped: serve what the data migration would have written
        # rather than refusing every model.
        return CatalogSnapshot(Catalog(pure.builtin_models(), DEFAULT_ALIASES))
    aliases = dict(ModelAlias.objects.values_list("name", "model__upstream_id"))
    return CatalogSnapshot(Catalog(models, aliases), prices)


def reload() -> None:
    """Rebuild from the database and make it the one the hot path and translators read."""
    global _snapshot
    snapshot = build()
    _snapshot = snapshot
    pure.install(snapshot.catalog)


def forget() -> None:
    """Drop the snapshot (tests): the next read loads it again, translators use the builtin."""
    global _snapshot
    _snapshot = None
    pure.install(None)


def _in_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def current() -> CatalogSnapshot:
    if _snapshot is None:
        if _in_event_loop():
            # Only before the gateway's start() loaded it (e.g. an in-process test client): the
            # ORM refuses to run in the event loop's thread, so load once in a worker thread.
            with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
                pool.submit(_reload_closing).result()
        else:
            reload()
    assert _snapshot is not None
    return _snapshot


def _reload_closing() -> None:
    from django.db import connection

    try:
        reload()
    finally:
        connection.close()


def install() -> None:
    invalidation.on_change(CHANGE_NAME, reload)


def not_found_message(name: str) -> str:
    return (
        f"The model {name!r} does not exist or is not offered here; "
        "list the available models with GET /v1/models."
    )


def served_model(client_name: str) -> ModelInfo:
    info = current().catalog.resolve(client_name)
    if info is None:
        raise InvalidRequest(
            not_found_message(client_name), param="model", code="model_not_found", status=404
        )
    if not info.enabled:
        raise InvalidRequest(
            f"The model {info.id!r} is disabled by the operator of this gateway.",
            param="model",
            code="model_disabled",
            status=403,
        )
    return info


def prices_for(model_id: str) -> Prices | None:
    return current().prices.get(model_id)
