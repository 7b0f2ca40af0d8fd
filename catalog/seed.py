"""The builtin catalog (protocol §13) and the default aliases, written into the tables.

Used by the data migration (so a fresh `make run` has the full catalog with no network) and by
tests that need the seed back after a flush. Idempotent: existing rows are left as they are.
"""

from __future__ import annotations

from typing import Any

from proxy.translate.catalog import DEFAULT_MODEL, builtin_models

# Names clients send on their own, mapped to today's models. Operators edit them in the admin.
DEFAULT_ALIASES: dict[str, str] = {
    # Claude Code's defaults (dated and [1m] variants resolve through these too).
    "claude-sonnet-4-5": "claude-sonnet-4-6",
    "claude-sonnet-4": "claude-sonnet-4-6",
    "claude-opus-4-1": "claude-opus-4-7",
    "claude-opus-4": "claude-opus-4-7",
    "claude-haiku-4-5": "claude-haiku-4-5-20251001",
    "claude-3-5-haiku": "claude-haiku-4-5-20251001",
    "claude-sonnet-*": "claude-sonnet-4-6",
    "claude-opus-*": "claude-opus-4-7",
    "claude-haiku-*": "claude-haiku-4-5-20251001",
    # Codex's names.
    "gpt-5": "gpt-5.5",
    "gpt-5.1": "gpt-5.5",
    "gpt-5.2": "gpt-5.5",
    "gpt-5-codex": "gpt-5.3-codex",
    "gpt-5.1-codex": "gpt-5.3-codex",
    "gpt-5.1-codex-max": "gpt-5.3-codex",
    "gpt-5.2-codex": "gpt-5.3-codex",
    "gpt-5-mini": "gpt-5.4-mini",
    "gpt-5.1-codex-mini": "gpt-5.4-mini",
    "gpt-5*": "gpt-5.5",
    "default": DEFAULT_MODEL,
}


def seed(model_cls: Any, alias_cls: Any) -> int:
    """Create the builtin models and default aliases that are missing; how many models were added."""
    existing = set(model_cls.objects.values_list("upstream_id", flat=True))
    rows = [
        model_cls(
            upstream_id=info.id,
            display_name=info.id,
            enabled=True,
            context_window=info.context_window,
            accepts_images=info.vision,
            reasoning_levels=list(info.efforts),
            source="builtin",
        )
        for info in builtin_models()
        if info.id not in existing
    ]
    model_cls.objects.bulk_create(rows)
    by_id = dict(model_cls.objects.values_list("upstream_id", "pk"))
    taken = set(alias_cls.objects.values_list("name", flat=True))
    alias_cls.objects.bulk_create(
        alias_cls(name=name, model_id=by_id[target])
        for name, target in DEFAULT_ALIASES.items()
        if name not in taken and target in by_id
    )
    return len(rows)
