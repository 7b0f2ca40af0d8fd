"""Whether a cost budget can work: it counts only models with prices, and the seeded catalog has none.

Operators set cost budgets from the CLI (`client_keys limit`, `user_limits`) and the admin; both
warn, and still save, when a model the key or user may use has no price (its requests cost
nothing against the budget). Operator paths only: this reads the catalog's tables.
"""

from __future__ import annotations

from accounts.limits import model_rule
from accounts.models import ClientKey, User

PRICE_HINT = "set prices with `manage.py models price ID --input USD --output USD` (per million tokens)"
_NAMED = 5  # models named in the warning; the rest are counted


def _allowed_patterns(target: User | ClientKey) -> list[str]:
    """The allowed-model list that applies: a key's own, else its user's (as the gateway reads it)."""
    own = list(target.allowed_models or [])
    if own or not isinstance(target, ClientKey):
        return own
    return list(target.user.allowed_models or [])


def unpriced_models(target: User | ClientKey) -> list[str]:
    """Enabled catalog models ``target`` (a User or ClientKey row) may use that lack an input or
    output price, sorted; empty when every one is priced."""
    from catalog.models import Model

    rule = model_rule(_allowed_patterns(target))
    rows = Model.objects.filter(enabled=True).order_by("upstream_id")
    return [
        row.upstream_id
        for row in rows
        if (row.price_input is None or row.price_output is None)
        and (rule is None or rule.allows(row.upstream_id))
    ]


def unpriced_budget_warning(target: User | ClientKey) -> str:
    """A warning when ``target`` has a cost budget and may use unpriced models; "" otherwise."""
    if target.budget_cost is None:
        return ""
    unpriced = unpriced_models(target)
    if not unpriced:
        return ""
    named = ", ".join(unpriced[:_NAMED]) + (
        f" and {len(unpriced) - _NAMED} more" if len(unpriced) > _NAMED else ""
    )
    return (
        f"warning: the cost budget counts only priced models, and {len(unpriced)} model(s) allowed here "
        f"have no price ({named}): their requests cost nothing against it. The builtin catalog has no "
        f"prices; {PRICE_HINT}, or on the model's admin page."
    )
