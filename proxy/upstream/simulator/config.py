"""Simulator configuration: per-key behaviours and limits, from a dict, a JSON file or flags.

A JSON file looks like::

    {
      "keys": {
        "user_bad":   {"scenario": "http-401"},
        "user_flaky": {"fail_first": 2, "fail_with": "http-500"},
        "user_slow":  {"defaults": "delay_ms=20"}
      },
      "accept_unknown_keys": true,
      "default_scenario": "text",
      "record_limit": 1000
    }
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from proxy.upstream.simulator.scenarios import DirectiveError, parse_selection


class ConfigError(ValueError):
    """The simulator configuration is not valid; the message says what to fix."""


@dataclass(frozen=True, slots=True)
class KeyBehaviour:
    """How the simulator treats requests made with one API key."""

    scenario: str | None = None  # forced for every generate ("http-401" also fails every route)
    fail_first: int = 0  # the first N generate requests fail with ``fail_with``, then normal
    fail_with: str = "http-500"
    defaults: str = ""  # parameters under any selection, e.g. "delay_ms=20"
    credits: float | None = None  # billing/credits monthlyCredits for this key (§11)
    period_days: float | None = None  # days until the billing period ends (subscriptions)

    @property
    def always_unauthorized(self) -> bool:
        return self.scenario is not None and self.scenario.split()[0] == "http-401"


@dataclass(frozen=True, slots=True)
class SimConfig:
    keys: Mapping[str, KeyBehaviour] = field(default_factory=dict)
    accept_unknown_keys: bool = True  # False: only the keys above authenticate
    default_scenario: str = "text"  # with no directive, scenario model or key scenario
    record_limit: int = 1000  # requests kept in memory (oldest dropped)
    record_body_limit: int = 1024 * 1024  # larger bodies are recorded by size only
    max_body_bytes: int = 64 * 1024 * 1024  # larger request bodies get 413
    extra_models: tuple[str, ...] = ()  # accepted besides the §13 catalog and sim/<scenario>


def check_selection(text: str, where: str, *, params_only: bool = False) -> str:
    """``text`` itself when it is a valid selection (or parameters only), else ConfigError."""
    try:
        name, _ = parse_selection(text)
    except DirectiveError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    if params_only and name is not None:
        raise ConfigError(f"{where}: expected parameters only (key=value ...), got a scenario name")
    if not params_only and name is None:
        raise ConfigError(f"{where}: expected a scenario name first")
    return text


def key_behaviour(data: Mapping[str, Any], where: str) -> KeyBehaviour:
    unknown = set(data) - {"scenario", "fail_first", "fail_with", "defaults", "credits", "period_days"}
    if unknown:
        raise ConfigError(f"{where}: unknown fields {sorted(unknown)}")
    scenario = data.get("scenario")
    fail_first = data.get("fail_first", 0)
    if not isinstance(fail_first, int) or fail_first < 0:
        raise ConfigError(f"{where}.fail_first must be a non-negative integer")
    return KeyBehaviour(
        scenario=check_selection(scenario, f"{where}.scenario") if scenario else None,
        fail_first=fail_first,
        fail_with=check_selection(data.get("fail_with", "http-500"), f"{where}.fail_with"),
        defaults=check_selection(data.get("defaults", ""), f"{where}.defaults", params_only=True),
        credits=_optional_number(data, "credits", where),
        period_days=_optional_number(data, "period_days", where),
    )


def _optional_number(data: Mapping[str, Any], name: str, where: str) -> float | None:
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
        raise ConfigError(f"{where}.{name} must be a non-negative number")
    return float(value)


def _keys(data: Any) -> dict[str, KeyBehaviour]:
    if not isinstance(data, dict):
        raise ConfigError("keys must be an object of key -> behaviour")
    return {key: key_behaviour(value, f"keys[{key[:8]}...]") for key, value in data.items()}


def config_from_dict(data: Mapping[str, Any]) -> SimConfig:
    known = {"keys", "accept_unknown_keys", "default_scenario", "record_limit", "record_body_limit"}
    known |= {"max_body_bytes", "extra_models"}
    unknown = set(data) - known
    if unknown:
        raise ConfigError(f"unknown configuration fields {sorted(unknown)}")
    defaults = SimConfig()
    return SimConfig(
        keys=_keys(data.get("keys", {})),
        accept_unknown_keys=bool(data.get("accept_unknown_keys", defaults.accept_unknown_keys)),
        default_scenario=check_selection(
            data.get("default_scenario", defaults.default_scenario), "default_scenario"
        ),
        record_limit=int(data.get("record_limit", defaults.record_limit)),
        record_body_limit=int(data.get("record_body_limit", defaults.record_body_limit)),
        max_body_bytes=int(data.get("max_body_bytes", defaults.max_body_bytes)),
        extra_models=tuple(data.get("extra_models", ())),
    )


def load_config(path: Path) -> SimConfig:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read simulator config {path}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object")
    return config_from_dict(data)
