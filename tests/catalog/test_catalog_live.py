"""The catalog through a live gateway: errors in both envelopes that never reach the upstream,
and /v1/models in both shapes through the real SDKs (strict validation)."""

from __future__ import annotations

import anthropic
import httpx
import openai
import pytest

from catalog import services


def _chat(live, model: str) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    return httpx.post(
        f"{live.url}/v1/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {live.key}"},
        timeout=10,
    )


def _messages(live, model: str, path: str = "/v1/messages") -> httpx.Response:
    body = {"model": model, "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
    headers = {"x-api-key": live.key, "anthropic-version": "2023-06-01"}
    return httpx.post(f"{live.url}{path}", json=body, headers=headers, timeout=10)


def test_unknown_model_is_a_404_in_both_envelopes_and_never_sent_upstream(live):
    response = _chat(live, "gpt-4o")
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["code"] == "model_not_found"
    assert "'gpt-4o'" in error["message"] and "GET /v1/models" in error["message"]
    for path in ("/v1/messages", "/v1/messages/count_tokens"):
        response = _messages(live, "claude-instant-1", path)
        assert response.status_code == 404
        body = response.json()
        assert body["type"] == "error" and body["error"]["type"] == "not_found_error"
        assert "'claude-instant-1'" in body["error"]["message"]
    assert live.sim_requests() == []


def test_disabled_model_is_a_403_in_both_envelopes_and_never_sent_upstream(live):
    services.set_enabled(["tencent/hy3-paid"], False)
    try:
        _wait_until_refused(live, "tencent/hy3-paid")
        response = _chat(live, "TENCENT/HY3-PAID")
        assert response.status_code == 403
        error = response.json()["error"]
        assert error["type"] == "permission_error" and error["code"] == "model_disabled"
        assert "disabled by the operator" in error["message"]
        response = _messages(live, "hy3-paid")
        assert response.status_code == 403
        assert response.json()["error"]["type"] == "permission_error"
        assert live.sim_requests() == []
    finally:
        services.set_enabled(["tencent/hy3-paid"], True)


def _wait_until_refused(live, model: str, timeout: float = 2.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _chat(live, model).status_code == 403:
            httpx.delete(f"{live.simulator_url}/_sim/requests", timeout=10)
            return
        time.sleep(0.05)
    raise AssertionError(f"{model} was never refused")


def test_alias_is_served_as_its_model_and_both_names_are_recorded(live):
    completion = live.openai_client().chat.completions.create(
        model="claude-sonnet-4-5-20250929[1m]", messages=[{"role": "user", "content": "hi"}]
    )
    assert completion.choices[0].message.content
    sent = live.sim_requests()[-1]["body"]["params"]["model"]
    assert sent == "claude-sonnet-4-6"


def test_openai_models_list_and_alias_lookup_through_the_sdk(live):
    client = live.openai_client()
    ids = [model.id for model in client.models.list()]
    assert "deepseek/deepseek-v4-flash" in ids and "claude-sonnet-4-5" in ids  # a model and an alias
    assert not any("*" in model_id for model_id in ids)
    model = client.models.retrieve("claude-sonnet-4-5")
    assert model.id == "claude-sonnet-4-6" and model.object == "model" and model.owned_by == "anthropic"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-4o")


def test_anthropic_models_pagination_through_the_sdk(live):
    client = live.anthropic_client()
    first = client.models.list(limit=5)
    assert len(first.data) == 5 and first.has_more
    assert first.first_id == first.data[0].id and first.last_id == first.data[-1].id
    second = client.models.list(limit=5, after_id=first.last_id)
    assert second.data[0].id not in {model.id for model in first.data}
    back = client.models.list(limit=5, before_id=second.first_id)
    assert [model.id for model in back.data] == [model.id for model in first.data]
    everything = [model.id for model in client.models.list(limit=7)]  # auto-pagination
    openai_ids = [model.id for model in live.openai_client().models.list()]
    assert everything == openai_ids
    alias = client.models.retrieve("claude-opus-4-1")
    assert alias.id == "claude-opus-4-7" and alias.type == "model"
    with pytest.raises(anthropic.NotFoundError):
        client.models.retrieve("claude-instant-1")


def test_disabled_models_are_not_listed(live):
    services.set_enabled(["tencent/Hy3"], False)
    try:
        import time

        deadline = time.monotonic() + 2
        while "tencent/Hy3" in [model.id for model in live.openai_client().models.list()]:
            assert time.monotonic() < deadline, "the disabled model is still listed"
            time.sleep(0.05)
    finally:
        services.set_enabled(["tencent/Hy3"], True)
