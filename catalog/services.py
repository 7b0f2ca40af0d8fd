"""Every change to the catalog goes through here, so each one reaches every process's snapshot.

Errors are ``CatalogError`` with a message for the operator (admin, CLI).
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal, InvalidOperation

from django.db import transaction

from catalog.models import Model, ModelAlias
from catalog.snapshot import CHANGE_NAME
from ccsite import invalidation


class CatalogError(Exception):
    """The operator asked for something the catalog cannot do; the message says why."""


def changed() -> None:
    """A Model or ModelAlias row changed: reload here now, elsewhere within a second."""
    invalidation.bump(CHANGE_NAME)


def find_models(ids: Iterable[str]) -> list[Model]:
    """The models for these upstream ids (case-insensitive); CatalogError names unknown ones."""
    found, unknown = [], []
    for model_id in ids:
        row = Model.objects.filter(upstream_id__iexact=model_id).first()
        if row is None:
            unknown.append(model_id)
        else:
            found.append(row)
    if unknown:
        raise CatalogError(f"Unknown model id(s): {', '.join(unknown)} (see `manage.py models list`).")
    return found


@transaction.atomic
def set_enabled(ids: Iterable[str], enabled: bool) -> list[Model]:
    rows = find_models(ids)
    Model.objects.filter(pk__in=[row.pk for row in rows]).update(enabled=enabled)
    changed()
    return rows


@transaction.atomic
def set_alias(name: str, target: str) -> ModelAlias:
    name = name.strip()
    if not name:
        raise CatalogError("An alias needs a name.")
    (model,) = find_models([target])
    if Model.objects.filter(upstream_id__iexact=name).exists():
        raise CatalogError(f"{name!r} is already a model id; an alias cannot shadow it.")
    alias = ModelAlias.objects.filter(name__iexact=name).first() or ModelAlias(name=name)
    alias.model = model
    alias.save()
    changed()
    return alias


@transaction.atomic
def remove_alias(name: str) -> None:
    deleted, _ = ModelAlias.objects.filter(name__iexact=name.strip()).delete()
    if not deleted:
        raise CatalogError(f"No alias named {name!r}.")
    changed()


def _price(value: str | Decimal | None, what: str) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        price = Decimal(str(value))
    except InvalidOperation:
        raise CatalogError(f"{what}: {value!r} is not a number.") from None
    if not price.is_finite() or price < 0:
        raise CatalogError(f"{what}: a price is a non-negative number of money per million tokens.")
    return price


@transaction.atomic
def set_prices(
    model_id: str,
    *,
    input: str | Decimal | None,
    output: str | Decimal | None,
    cache_read: str | Decimal | None = None,
    cache_write: str | Decimal | None = None,
) -> Model:
    """Set a model's prices per million tokens; None/empty clears a price (unpriced)."""
    (model,) = find_models([model_id])
    model.price_input = _price(input, "input")
    model.price_output = _price(output, "output")
    model.price_cache_read = _price(cache_read, "cache read")
    model.price_cache_write = _price(cache_write, "cache write")
    model.save()
    changed()
    return model
