"""The resolution table: what each client name means in a catalog, and the hot-path errors."""

from __future__ import annotations

import pytest

from catalog import services, snapshot
from catalog.models import Model
from proxy.translate.catalog import Catalog, ModelInfo
from proxy.translate.errors import InvalidRequest


def _info(model_id: str, *, enabled: bool = True) -> ModelInfo:
    return ModelInfo(model_id, (), 200_000, True, enabled=enabled)


CATALOG = Catalog(
    [
        _info("claude-sonnet-4-6"),
        _info("claude-haiku-4-5-20251001"),
        _info("deepseek/deepseek-v4-flash"),
        _info("moonshotai/Kimi-K2.5"),
        _info("zai-org/GLM-5", enabled=False),
        _info("gpt-5.5"),
    ],
    {
        "sonnet-latest": "claude-sonnet-4-6",
        "claude-haiku-*": "deepseek/deepseek-v4-flash",
        "claude-haiku-4-5": "claude-haiku-4-5-20251001",  # an exact alias beats the wildcard
        "cheap": "zai-org/GLM-5",
        "gpt-5*": "gpt-5.5",
    },
)


@pytest.mark.parametrize(
    ("name", "served"),
    [
        ("claude-sonnet-4-6", "claude-sonnet-4-6"),  # exact id
        ("CLAUDE-Sonnet-4-6", "claude-sonnet-4-6"),  # case
        ("deepseek-v4-flash", "deepseek/deepseek-v4-flash"),  # short name
        ("kimi-k2.5", "moonshotai/Kimi-K2.5"),  # short name, case
        ("claude-sonnet-4-6-20260101", "claude-sonnet-4-6"),  # dated suffix
        ("claude-sonnet-4-6[1m]", "claude-sonnet-4-6"),  # Claude Code's 1M marker
        ("sonnet-latest", "claude-sonnet-4-6"),  # exact alias
        ("Sonnet-Latest", "claude-sonnet-4-6"),  # alias, case
        ("claude-haiku-4-5", "claude-haiku-4-5-20251001"),  # exact alias wins over wildcard
        ("claude-haiku-4-5-20251001", "claude-haiku-4-5-20251001"),  # exact id wins over wildcard
        ("claude-haiku-3-9", "deepseek/deepseek-v4-flash"),  # wildcard alias
        ("gpt-5-codex", "gpt-5.5"),  # wildcard alias
        ("claude-sonnet-4-20250514", "claude-sonnet-4-6"),  # §13 CLI deprecation alias
    ],
)
def test_names_resolve_to_served_models(name, served):
    info = CATALOG.resolve(name)
    assert info is not None and info.id == served


def test_disabled_models_resolve_as_disabled_and_unknown_as_none():
    assert CATALOG.resolve("zai-org/GLM-5").enabled is False
    assert CATALOG.resolve("cheap").enabled is False  # an alias to a disabled model
    assert CATALOG.resolve("gpt-4o") is None
    assert CATALOG.resolve("claude") is None


def test_listing_has_enabled_models_and_exact_aliases_of_enabled_models():
    assert "zai-org/GLM-5" not in [info.id for info in CATALOG.enabled_models()]
    assert [name for name, _ in CATALOG.listed_aliases()] == ["claude-haiku-4-5", "sonnet-latest"]


@pytest.mark.django_db
def test_served_model_errors_name_the_model_and_the_fix():
    with pytest.raises(InvalidRequest) as unknown:
        snapshot.served_model("gpt-4o")
    assert unknown.value.status == 404 and unknown.value.code == "model_not_found"
    assert "'gpt-4o'" in unknown.value.message and "GET /v1/models" in unknown.value.message
    services.set_enabled(["zai-org/GLM-5"], False)
    with pytest.raises(InvalidRequest) as disabled:
        snapshot.served_model("glm-5")
    assert disabled.value.status == 403 and disabled.value.code == "model_disabled"
    assert "disabled by the operator" in disabled.value.message


@pytest.mark.django_db
def test_seeded_catalog_serves_claude_code_and_codex_defaults():
    served = {name: snapshot.served_model(name).id for name in ("claude-sonnet-4-5", "claude-opus-4-1")}
    assert served == {"claude-sonnet-4-5": "claude-sonnet-4-6", "claude-opus-4-1": "claude-opus-4-7"}
    assert snapshot.served_model("claude-sonnet-4-5-20250929[1m]").id == "claude-sonnet-4-6"
    assert snapshot.served_model("claude-haiku-4-5").id == "claude-haiku-4-5-20251001"
    assert snapshot.served_model("gpt-5-codex").id == "gpt-5.3-codex"
    assert snapshot.served_model("default").id == "deepseek/deepseek-v4-flash"
    assert Model.objects.count() == len(snapshot.current().catalog.models)


@pytest.mark.django_db
def test_changes_take_effect_at_once_in_this_process():
    with pytest.raises(InvalidRequest):
        snapshot.served_model("team-model")
    services.set_alias("team-model", "moonshotai/Kimi-K2.5")
    assert snapshot.served_model("TEAM-MODEL").id == "moonshotai/Kimi-K2.5"
    assert snapshot.prices_for("moonshotai/Kimi-K2.5") == snapshot.Prices(None, None, None, None)
    services.set_prices("MoonshotAI/kimi-k2.5", input="0.6", output="2.5", cache_read="0.15")
    assert snapshot.prices_for("moonshotai/Kimi-K2.5") == snapshot.Prices(0.6, 0.15, None, 2.5)
    assert snapshot.prices_for("no/such-model") is None
    services.remove_alias("team-model")
    with pytest.raises(InvalidRequest):
        snapshot.served_model("team-model")
