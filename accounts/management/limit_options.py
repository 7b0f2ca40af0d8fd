"""The limit options shared by `client_keys limit` and `user_limits`, and their JSON view."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from accounts.limits import PERIODS

CLEAR = "none"


def _count(text: str) -> int | None:
    if text.lower() == CLEAR:
        return None
    if not text.isdigit() or int(text) < 1:
        raise CommandError(f"expected a whole number of at least 1 or {CLEAR!r}, got {text!r}")
    return int(text)


def add_limit_arguments(parser: CommandParser) -> None:
    help_count = f"a whole number; {CLEAR!r} removes the limit"
    parser.add_argument("--rpm", help=f"requests per minute ({help_count})")
    parser.add_argument("--tpm", help=f"tokens per minute ({help_count})")
    parser.add_argument("--concurrent", help=f"requests at once ({help_count})")
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--budget-tokens", help=f"tokens per period ({help_count})")
    budget.add_argument("--budget-cost", help=f"estimated US dollars per period; {CLEAR!r} removes it")
    parser.add_argument("--period", choices=PERIODS, help="the budget period (default month)")
    parser.add_argument("--models", help="allowed models, comma-separated ids/aliases/wildcards; '' = any")


def limit_changes(options: dict[str, Any]) -> dict[str, object]:
    """Field changes from the parsed options (only the options that were given)."""
    changes: dict[str, object] = {}
    for option, field in (
        ("rpm", "rpm_limit"),
        ("tpm", "tpm_limit"),
        ("concurrent", "concurrent_limit"),
        ("budget_tokens", "budget_tokens"),
    ):
        if options.get(option) is not None:
            changes[field] = _count(options[option])
    cost = options.get("budget_cost")
    if cost is not None:
        if cost.lower() == CLEAR:
            changes["budget_cost"] = None
        else:
            try:
                changes["budget_cost"] = float(cost)
            except ValueError:
                raise CommandError(
                    f"--budget-cost expects an amount like 25 or 12.50, got {cost!r}"
                ) from None
    if options.get("period") is not None:
        changes["budget_period"] = options["period"]
    if options.get("models") is not None:
        changes["allowed_models"] = [name.strip() for name in options["models"].split(",") if name.strip()]
    return changes


def limits_json(row: Any) -> dict[str, Any]:
    """The limit fields of a User or ClientKey row, JSON-ready (null = no limit)."""
    return {
        "allowed_models": list(row.allowed_models or []),
        "rpm": row.rpm_limit,
        "tpm": row.tpm_limit,
        "concurrent": row.concurrent_limit,
        "budget_tokens": row.budget_tokens,
        "budget_cost": None if row.budget_cost is None else float(row.budget_cost),
        "budget_period": row.budget_period,
    }


def limits_text(row: Any) -> str:
    values = limits_json(row)
    if values["budget_tokens"] is None and values["budget_cost"] is None:
        del values["budget_period"]  # a period alone limits nothing
    parts = [f"{name}={value}" for name, value in values.items() if value not in (None, [])]
    return ", ".join(parts) or "no limits"
