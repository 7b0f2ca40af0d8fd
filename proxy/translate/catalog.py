"""The Command Code model catalog as the 1.64.0 CLI ships it (protocol §13), as pure data.

It resolves what clients type to canonical upstream ids (case-insensitively, by short name and
through the CLI's deprecation aliases), tells which models take images, and snaps reasoning
effort to the levels each model supports.

``Catalog`` is the pure resolution over any model list plus operator aliases; the database
catalog (the ``catalog`` app) builds one from its tables and ``install``s it, so ``resolve``
answers from the operator's catalog in a gateway process and from the builtin table elsewhere.
Translators keep an unknown name as sent; the generation path refuses it (404) before the
upstream sees it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

DEFAULT_MODEL = "deepseek/deepseek-v4-flash"
DEFAULT_CONTEXT = 200_000

EFFORT_RANK = {"low": 0, "medium": 1, "high": 2, "xhigh": 3, "max": 4}

_E5 = ("low", "medium", "high", "xhigh", "max")
_E4 = ("low", "medium", "high", "xhigh")
_E3 = ("low", "medium", "high")
_HM = ("high", "max")
_LHM = ("low", "high", "max")
_LMX = ("low", "medium", "xhigh")
_HX = ("high", "xhigh")

# id -> (reasoning efforts, context window). §13 "Known ids" and "Reasoning effort lists".
_MODELS: dict[str, tuple[tuple[str, ...], int]] = {
    "claude-sonnet-5": (_E5, 1_000_000),
    "claude-sonnet-4-6": (_E5, 1_000_000),
    "claude-fable-5-1": (_E5, 1_000_000),
    "claude-fable-5": (_E5, 1_000_000),
    "claude-opus-5-5": (_E5, 1_000_000),
    "claude-opus-5": (_E5, 1_000_000),
    "claude-opus-4-8": (_E5, 1_000_000),
    "claude-opus-4-7": (_E5, 1_000_000),
    "claude-haiku-4-5-20251001": ((), 200_000),
    "gpt-6-astra": (_E5, 1_050_000),
    "gpt-6-sol": (_E5, 1_050_000),
    "gpt-6-luna": (_E5, 1_050_000),
    "gpt-5.6-sol": (_E5, 1_050_000),
    "gpt-5.6-terra": (_E5, 1_050_000),
    "gpt-5.6-luna": (_E5, 1_050_000),
    "gpt-5.5": (_E4, 400_000),
    "gpt-5.4": (_E4, 400_000),
    "gpt-5.3-codex": (_E4, 400_000),
    "gpt-5.4-mini": (_E3, 400_000),
    "MiniMaxAI/MiniMax-M3-Free": (_E3, 1_000_000),
    "moonshotai/Kimi-K3": (_LHM, 1_000_000),
    "thinkingmachines/inkling": ((), 1_000_000),
    "thinkingmachines/inkling-small": ((), 1_000_000),
    "deepseek/deepseek-v4-pro": (_HM, 1_000_000),
    "deepseek/deepseek-v4-flash": (_HM, 1_000_000),
    "deepseek/deepseek-v4-flash-vision-exp": (_HM, 1_000_000),
    "deepseek/deepseek-v4-flash-fast": (_LHM, 1_000_000),
    "deepseek/deepseek-v4.1-flash": (_LHM, 1_000_000),
    "moonshotai/Kimi-K2.7-Code": ((), 1_000_000),
    "moonshotai/Kimi-K2.7-Code-Highspeed": ((), 1_000_000),
    "moonshotai/Kimi-K2.6": ((), 256_000),
    "moonshotai/Kimi-K2.5": ((), 256_000),
    "zai-org/GLM-5.3": (_LHM, 1_000_000),
    "z-ai/glm-5.3-flash": (_LHM, 1_000_000),
    "z-ai/glm-5.3-flashx": (_LHM, 1_000_000),
    "zai-org/GLM-5.2": (_HM, 1_000_000),
    "zai-org/GLM-5.2-Fast": ((), 1_000_000),
    "zai-org/GLM-5.1": ((), 1_000_000),
    "zai-org/GLM-5": ((), 200_000),
    "MiniMaxAI/MiniMax-M3": (_E3, 1_000_000),
    "MiniMaxAI/MiniMax-M2.7": ((), 1_000_000),
    "minimax/minimax-m3-free": (_E3, 1_000_000),
    "minimax/minimax-m2.7-free": ((), 1_000_000),
    "MiniMaxAI/MiniMax-M2.5": ((), 200_000),
    "xiaomi/mimo-v2.6-pro": ((), 1_000_000),
    "xiaomi/mimo-v2.6-pro-ultraspeed": ((), 1_000_000),
    "xiaomi/mimo-v2.6-flash": ((), 1_000_000),
    "xiaomi/mimo-v2.5-pro": ((), 1_000_000),
    "xiaomi/mimo-v2.5": ((), 1_000_000),
    "Qwen/Qwen3.6-Max-Preview": ((), 1_000_000),
    "Qwen/Qwen3.6-Plus": ((), 1_000_000),
    "Qwen/Qwen3.7-Max": ((), 1_000_000),
    "Qwen/Qwen3.7-Plus": ((), 1_000_000),
    "Qwen/Qwen3.8-Omni-Flash": (_LMX, 1_000_000),
    "Qwen/Qwen3.8-Max-0902": (_LMX, 1_000_000),
    "Qwen/Qwen3.8-Max": (_LMX, 1_000_000),
    "Qwen/Qwen3.8-27B": (_LMX, 1_000_000),
    "Qwen/Qwen3.8-Flash": (_LMX, 1_000_000),
    "Qwen/Qwen3.7-Flash": ((), 1_000_000),
    "meituan/LongCat-2.0": ((), 1_000_000),
    "meituan/LongCat-2.0:free": ((), 1_000_000),
    "stepfun/Step-5-Preview": (_E3, 1_000_000),
    "stepfun/Step-3.7-Flash": ((), 1_000_000),
    "stepfun/Step-3.5-Flash": ((), 1_000_000),
    "tencent/hy4-preview": (_E3, 1_000_000),
    "tencent/hy3-paid": ((), 1_000_000),
    "tencent/Hy3": ((), 1_000_000),
    "google/gemini-3.8-flash": (_E3, 1_000_000),
    "google/gemini-3.7-flash": (_E3, 1_000_000),
    "google/gemini-3.6-flash": (_E3, 1_000_000),
    "google/gemini-3.5-flash": (_E3, 1_000_000),
    "google/gemini-3.5-flash-lite": (_E3, 1_000_000),
    "google/gemini-3.1-flash-lite": (_E3, 1_000_000),
    "sakana/fugu-ultra": (_HX, 1_000_000),
    "xai/grok-4.5": (_E3, 500_000),
    "xai/grok-4.6": (_E4, 500_000),
    "xai/grok-4.7": (_E4, 500_000),
    "meta/muse-spark-1.1": (_E4, 1_000_000),
    "meta/muse-spark-1.2": (_E4, 1_000_000),
    "meta/muse-spark-1.2-contributor": (_E4, 1_000_000),
    "meta/muse-spark-1.3": (_E5, 1_000_000),
    "meta/muse-spark-1.3-contributor": (_E4, 1_000_000),
    "nvidia/nemotron-3-ultra-550b-a55b": ((), 1_000_000),
    "poolside/laguna-s-2.1-free": ((), 1_000_000),
    "inclusionai/ling-3.0-flash-free": ((), 1_000_000),
    "inclusionai/ling-3.0-flash-sante:free": ((), 1_000_000),
}

# §13: the CLI treats every model as vision-capable except these.
TEXT_ONLY = frozenset(
    {
        "deepseek/deepseek-v4-pro",
        "deepseek/deepseek-v4-flash",
        "deepseek/deepseek-v4-flash-fast",
        "zai-org/GLM-5.3",
        "zai-org/GLM-5.2",
        "zai-org/GLM-5.2-Fast",
        "zai-org/GLM-5.1",
        "zai-org/GLM-5",
        "MiniMaxAI/MiniMax-M2.7",
        "minimax/minimax-m2.7-free",
        "MiniMaxAI/MiniMax-M2.5",
        "xiaomi/mimo-v2.5-pro",
        "Qwen/Qwen3.6-Max-Preview",
        "Qwen/Qwen3.7-Max",
        "meituan/LongCat-2.0",
        "meituan/LongCat-2.0:free",
        "stepfun/Step-3.5-Flash",
        "tencent/hy4-preview",
        "tencent/Hy3",
        "tencent/hy3-paid",
        "nvidia/nemotron-3-ultra-550b-a55b",
        "poolside/laguna-s-2.1-free",
        "inclusionai/ling-3.0-flash-free",
        "inclusionai/ling-3.0-flash-sante:free",
    }
)

# §13: deprecated ids the CLI replaces.
_ALIASES = {
    "claude-sonnet-4-20250514": "claude-sonnet-4-6",
    "claude-sonnet-4-5-20250929": "claude-sonnet-4-6",
    "claude-opus-4-5-20251101": "claude-opus-4-7",
    "claude-opus-4-6": "claude-opus-4-7",
    "claude-haiku-4-5": "claude-haiku-4-5-20251001",
    "tencent/hy3": "tencent/Hy3",
}

_DATE_SUFFIX = re.compile(r"[-@]\d{8}$")


@dataclass(frozen=True, slots=True)
class ModelInfo:
    id: str
    efforts: tuple[str, ...]
    context_window: int
    vision: bool
    enabled: bool = True  # False: the operator turned it off (403, never sent upstream)
    display_name: str = ""
    created: int = 0  # Unix seconds; 0 = unknown

    @property
    def owned_by(self) -> str:
        if "/" in self.id:
            return self.id.split("/", 1)[0]
        return "anthropic" if self.id.startswith("claude") else "openai"


def _info(model_id: str) -> ModelInfo:
    efforts, context = _MODELS[model_id]
    return ModelInfo(model_id, efforts, context, model_id not in TEXT_ONLY)


def builtin_models() -> list[ModelInfo]:
    """The CLI's own catalog (§13), the seed of the database catalog."""
    return [_info(model_id) for model_id in _MODELS]


def builtin_cli_aliases() -> dict[str, str]:
    """§13's deprecated ids and what the CLI replaces them with."""
    return dict(_ALIASES)


_CONTEXT_SUFFIX = re.compile(r"\[1m\]$", re.IGNORECASE)  # Claude Code's 1M-context marker


def _name_variants(name: str) -> list[str]:
    """The name, then without Claude Code's ``[1m]`` marker and/or a dated suffix."""
    variants = [name]
    for candidate in list(variants):
        variants.append(_CONTEXT_SUFFIX.sub("", candidate))
    for candidate in list(variants):
        variants.append(_DATE_SUFFIX.sub("", candidate))
    return list(dict.fromkeys(variants))


def _wildcard(pattern: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in pattern.lower().split("*")) + r"\Z")


class Catalog:
    """Models and the names that mean them; immutable once built (a snapshot swaps it whole).

    ``resolve`` order: for the name as sent, then without ``[1m]`` and/or a ``-YYYYMMDD`` /
    ``@YYYYMMDD`` suffix: an exact id (case-insensitive), an exact operator alias, a §13 CLI
    deprecation alias, a short name (the part after the vendor's ``/`` when unique); only then
    operator wildcard aliases (``*`` = any characters; the most specific, i.e. the longest
    pattern, wins). Disabled models still resolve (``info.enabled`` is False) so callers can
    tell "disabled" from "unknown".
    """

    def __init__(
        self,
        models: Iterable[ModelInfo],
        aliases: Mapping[str, str] | None = None,
        cli_aliases: Mapping[str, str] | None = None,
    ) -> None:
        self.models: dict[str, ModelInfo] = {info.id: info for info in models}
        self._by_lower = {model_id.lower(): model_id for model_id in self.models}
        exact: dict[str, str] = {}
        wildcards: list[tuple[str, str]] = []
        for alias, target in (aliases or {}).items():
            if target not in self.models:
                continue
            if "*" in alias:
                wildcards.append((alias, target))
            else:
                exact[alias.lower()] = target
        self.aliases = {alias: target for alias, target in (aliases or {}).items() if target in self.models}
        self._aliases = exact
        wildcards.sort(key=lambda item: (-len(item[0].replace("*", "")), item[0]))
        self._wildcards = [(_wildcard(alias), target) for alias, target in wildcards]
        cli = _ALIASES if cli_aliases is None else cli_aliases
        self._cli = {alias.lower(): target for alias, target in cli.items() if target in self.models}
        self._short = self._short_names()

    def _short_names(self) -> dict[str, str]:
        seen: dict[str, list[str]] = {}
        for model_id in self.models:
            seen.setdefault(model_id.rsplit("/", 1)[-1].lower(), []).append(model_id)
        return {short: ids[0] for short, ids in seen.items() if len(ids) == 1}

    def _lookup(self, lowered: str) -> str | None:
        return (
            self._by_lower.get(lowered)
            or self._aliases.get(lowered)
            or self._cli.get(lowered)
            or self._short.get(lowered)
        )

    def resolve(self, name: str) -> ModelInfo | None:
        """The model a client's name means (enabled or not), or None when nothing matches."""
        lowered = name.strip().lower()
        for variant in _name_variants(lowered):
            found = self._lookup(variant)
            if found is not None:
                return self.models[found]
        for pattern, target in self._wildcards:
            if pattern.match(lowered):
                return self.models[target]
        return None

    def enabled_models(self) -> list[ModelInfo]:
        return [info for info in self.models.values() if info.enabled]

    def listed_aliases(self) -> list[tuple[str, ModelInfo]]:
        """Exact operator aliases whose model is enabled, as (alias, model), sorted by alias."""
        return sorted(
            (alias, self.models[target])
            for alias, target in self.aliases.items()
            if "*" not in alias and self.models[target].enabled
        )


BUILTIN = Catalog(builtin_models())
_active = BUILTIN


def install(catalog: Catalog | None) -> None:
    """Make ``catalog`` the one ``resolve`` answers from (None: back to the builtin table)."""
    global _active
    _active = catalog if catalog is not None else BUILTIN


def active() -> Catalog:
    return _active


def resolve(name: str) -> ModelInfo | None:
    """The entry a client's model name means in the active catalog, or None when unknown."""
    return _active.resolve(name)


def all_models() -> list[ModelInfo]:
    return builtin_models()


def snap_effort(requested: str, supported: tuple[str, ...]) -> str | None:
    """The supported level nearest to the requested one (ties go up); None when unsupported."""
    if not supported:
        return None
    rank = EFFORT_RANK.get(requested)
    if rank is None:
        return None
    return min(supported, key=lambda level: (abs(EFFORT_RANK[level] - rank), -EFFORT_RANK[level]))


# One documented table from an Anthropic thinking budget to an effort level (protocol §14,
# CELEST's thresholds): the budget's upper bound for each level.
BUDGET_THRESHOLDS = ((2_000, "low"), (8_000, "medium"), (16_000, "high"), (32_000, "xhigh"))


def effort_for_budget(budget_tokens: int) -> str:
    for limit, level in BUDGET_THRESHOLDS:
        if budget_tokens <= limit:
            return level
    return "max"
