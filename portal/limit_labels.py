"""Limits in words for the self-service page: names people read, reset times in UTC.

`/v1/me` keeps the identifiers and epoch seconds (scripts read them); the page shows the same
entries as "Requests per minute ... resets at 2026-12-01 03:10:00 UTC", the wording of the 429s.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

LIMIT_NAMES = {
    "requests_per_minute": "Requests per minute",
    "tokens_per_minute": "Tokens per minute (input + output)",
    "concurrent_requests": "Requests at once",
    "budget_tokens": "Token budget",
    "budget_cost_usd": "Cost budget (USD, estimated)",
}


def reset_text(epoch: float | None) -> str:
    """'resets at 2026-12-01 03:10:00 UTC' (as the 429 messages say it), or '' without a reset."""
    if epoch is None:
        return ""
    return f"resets at {datetime.fromtimestamp(epoch, UTC):%Y-%m-%d %H:%M:%S} UTC"


def readable_entry(entry: dict[str, Any]) -> dict[str, Any]:
    """A `/v1/me` limit entry with ``name`` (words) and ``resets`` (UTC text) added."""
    resets_at = entry.get("resets_at")
    return {
        **entry,
        "name": LIMIT_NAMES.get(entry["limit"], entry["limit"].replace("_", " ").capitalize()),
        "resets": reset_text(resets_at),
        "resets_iso": "" if resets_at is None else datetime.fromtimestamp(resets_at, UTC).isoformat(),
    }


def key_limits_text(limits: dict[str, Any]) -> str:
    """A key's own limits (``limits_json``) in words, e.g. '60 requests per minute, 5 USD per month'."""
    period = limits.get("budget_period") or "month"
    parts = []
    for field, words in (
        ("rpm", "requests per minute"),
        ("tpm", "tokens per minute"),
        ("concurrent", "requests at once"),
    ):
        if limits.get(field) is not None:
            parts.append(f"{limits[field]:,} {words}")
    if limits.get("budget_tokens") is not None:
        parts.append(f"{limits['budget_tokens']:,} tokens per {period}")
    if limits.get("budget_cost") is not None:
        parts.append(f"{limits['budget_cost']:g} USD per {period} (estimated)")
    if limits.get("allowed_models"):
        parts.append("models: " + ", ".join(limits["allowed_models"]))
    return ", ".join(parts)
