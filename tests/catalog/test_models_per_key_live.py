"""/v1/models for a key with an allowed-models list: through a live gateway and the real SDKs
(strict validation), the key sees only the models and aliases it may use, in both shapes and
on every page, and a model it may not use is refused by /v1/models/{id} exactly as generation
refuses it."""

from __future__ import annotations

import anthropic
import httpx
import openai
import pytest

from accounts.services import limits_update
from catalog.snapshot import build

pytestmark = [pytest.mark.live]

ALLOWED = ["deepseek/*", "claude-sonnet-4-5"]  # a wildcard and an alias (of claude-sonnet-4-6)


def _expected_names() -> list[str]:
    """Enabled models and exact aliases whose model is a deepseek one or claude-sonnet-4-6.

    Read from the tables, as the gateway does: this process's cached snapshot may predate
    an earlier test's toggle."""
    catalog = build().catalog
    names = [info.id for info in catalog.enabled_models()] + [name for name, _ in catalog.listed_aliases()]
    served = {name: catalog.resolve(name).id for name in names}
    return [
        name for name in names if served[name].startswith("deepseek/") or served[name] == "claude-sonnet-4-6"
    ]


@pytest.fixture(params=["key", "user"])
def restricted(request, live):
    """The allowed list on the key itself, or on its user (the key then has none)."""
    key = live.limit_key(allowed_models=ALLOWED if request.param == "key" else [])
    if request.param == "user":
        limits_update(target=key.user, changes={"allowed_models": ALLOWED})
    return live


@pytest.fixture
def sdks(restricted):
    with restricted.openai_client() as openai_sdk, restricted.anthropic_client() as anthropic_sdk:
        yield openai_sdk, anthropic_sdk


def test_a_restricted_key_lists_only_its_models_in_both_shapes(restricted, sdks):
    openai_sdk, anthropic_sdk = sdks
    expected = _expected_names()
    assert {"claude-sonnet-4-5", "claude-sonnet-4", "claude-sonnet-4-6"} <= set(expected)
    openai_ids = [model.id for model in openai_sdk.models.list()]
    assert openai_ids == expected
    assert not {"claude-opus-4-1", "claude-opus-4-7", "gpt-5", "gpt-5.5"} & set(openai_ids)
    first = anthropic_sdk.models.list(limit=3)
    assert [model.id for model in first.data] == expected[:3] and first.has_more
    assert [model.id for model in anthropic_sdk.models.list(limit=3)] == expected  # every page
    last_page = anthropic_sdk.models.list(limit=3, after_id=expected[-4])
    assert [model.id for model in last_page.data] == expected[-3:] and not last_page.has_more
    back = anthropic_sdk.models.list(limit=2, before_id=expected[2])
    assert [model.id for model in back.data] == expected[:2]
    assert restricted.sim_requests() == []


def test_a_restricted_key_resolves_its_aliases_and_is_refused_the_others(restricted, sdks):
    openai_sdk, anthropic_sdk = sdks
    assert openai_sdk.models.retrieve("claude-sonnet-4").id == "claude-sonnet-4-6"  # via its model
    assert anthropic_sdk.models.retrieve("claude-sonnet-4-5").id == "claude-sonnet-4-6"
    with pytest.raises(openai.PermissionDeniedError) as refused:
        openai_sdk.models.retrieve("claude-opus-4-1")
    error = refused.value.body
    assert error["code"] == "model_not_allowed" and "'claude-opus-4-1'" in error["message"]
    with pytest.raises(anthropic.PermissionDeniedError) as refused_anthropic:
        anthropic_sdk.models.retrieve("claude-opus-4-1")
    assert refused_anthropic.value.body["error"]["type"] == "permission_error"
    # The same refusal as a generation request naming that model, which never goes upstream.
    chat = httpx.post(
        f"{restricted.url}/v1/chat/completions",
        json={"model": "claude-opus-4-1", "messages": [{"role": "user", "content": "hi"}]},
        headers={"Authorization": f"Bearer {restricted.key}"},
        timeout=10,
    )
    assert chat.status_code == 403 and chat.json()["error"] == error
    with pytest.raises(openai.NotFoundError):  # unknown stays unknown (404 before the key's rule)
        openai_sdk.models.retrieve("gpt-4o")
    assert restricted.sim_requests() == []
