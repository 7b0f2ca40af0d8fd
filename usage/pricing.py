"""Estimated cost of a request: a pure function of its token counts and the model's prices.

``prices_for`` reads the catalog's per-model prices from its in-process snapshot
(``catalog.snapshot.prices_for``). A model without input and output prices has no cost: empty
(NULL), never a made-up zero. Prices are US dollars per million tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

PER_MILLION = Decimal(1_000_000)


class TokenCounts(Protocol):
    uncached_input_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    output_tokens: int  # reasoning included, billed as output


@dataclass(frozen=True, slots=True)
class Prices:
    """USD per million tokens; cache prices default to the input price when a model has none."""

    input: Decimal
    output: Decimal
    cache_read: Decimal | None = None
    cache_write: Decimal | None = None


def cost_usd(tokens: TokenCounts, prices: Prices | None) -> Decimal | None:
    """The estimated cost in USD, or None when the model has no prices."""
    if prices is None:
        return None
    cache_read = prices.input if prices.cache_read is None else prices.cache_read
    cache_write = prices.input if prices.cache_write is None else prices.cache_write
    total = (
        tokens.uncached_input_tokens * prices.input
        + tokens.cache_read_tokens * cache_read
        + tokens.cache_write_tokens * cache_write
        + tokens.output_tokens * prices.output
    )
    return total / PER_MILLION


def _decimal(value: float | None) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def prices_for(model: str) -> Prices | None:
    """The prices of an upstream model id from the catalog's snapshot, or None when the model
    is not in the catalog or lacks an input or output price. Called by the request-log writer,
    off the request path."""
    from catalog.snapshot import prices_for as catalog_prices

    found = catalog_prices(model)
    if found is None or found.input is None or found.output is None:
        return None
    return Prices(
        input=Decimal(str(found.input)),
        output=Decimal(str(found.output)),
        cache_read=_decimal(found.cache_read),
        cache_write=_decimal(found.cache_write),
    )
