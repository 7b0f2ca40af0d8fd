"""Bad input on the generating routes: always a 4xx in the surface's own envelope, never a 500,
and nothing sent upstream (no upstream is configured here: reaching it would be a 502)."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.django_db(transaction=True)

CHAT = "/v1/chat/completions"
MESSAGES = "/v1/messages"
HI = [{"role": "user", "content": "hi"}]
BAD_TOOL = {"type": "function", "function": {"name": "bad name!", "parameters": {"type": "object"}}}

OPENAI_CASES = [
    ("not json", "not valid JSON"),
    ("[1, 2]", "JSON object"),
    ("", "empty"),
    (json.dumps({"model": "deepseek-v4-flash"}), "messages"),
    (json.dumps({"model": "deepseek-v4-flash", "messages": []}), "messages"),
    (json.dumps({"model": "deepseek-v4-flash", "messages": "hi"}), "messages"),
    (json.dumps({"model": "deepseek-v4-flash", "messages": [{"role": "wizard", "content": "x"}]}), "role"),
    (json.dumps({"model": "deepseek-v4-flash", "messages": HI, "n": 2}), "n"),
    (json.dumps({"model": "deepseek-v4-flash", "messages": HI, "temperature": "hot"}), "temperature"),
    (json.dumps({"model": "deepseek-v4-flash", "messages": HI, "tools": [BAD_TOOL]}), "tools"),
    (json.dumps({"model": 7, "messages": HI}), "model"),
]
ANTHROPIC_CASES = [
    ("{", "not valid JSON"),
    (json.dumps({"model": "claude-sonnet-4-6", "messages": HI}), "max_tokens"),
    (json.dumps({"model": "claude-sonnet-4-6", "max_tokens": 10, "messages": []}), "messages"),
    (json.dumps({"model": "claude-sonnet-4-6", "max_tokens": -1, "messages": HI}), "max_tokens"),
    (
        json.dumps(
            {"model": "claude-sonnet-4-6", "max_tokens": 9, "messages": [{"role": "bot", "content": "x"}]}
        ),
        "role",
    ),
    (
        json.dumps(
            {
                "model": "claude-sonnet-4-6",
                "max_tokens": 9,
                "messages": [{"role": "user", "content": [{"type": "hologram", "data": "x"}]}],
            }
        ),
        "hologram",
    ),
    (
        json.dumps(
            {
                "model": "claude-sonnet-4-6",
                "max_tokens": 10,
                "messages": HI,
                "tools": [{"type": "web_search_20250305", "name": "web_search"}],
            }
        ),
        "web_search",
    ),
]


@pytest.fixture
def auth(client_key):
    return {"Authorization": f"Bearer {client_key[1]}"}


@pytest.mark.parametrize(("body", "mentions"), OPENAI_CASES)
async def test_openai_bad_input_is_a_400_in_the_openai_envelope(async_client, auth, body, mentions):
    response = await async_client.post(CHAT, body, content_type="application/json", headers=auth)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    assert mentions.lower() in (error["message"] + str(error["param"])).lower()


@pytest.mark.parametrize(("body", "mentions"), ANTHROPIC_CASES)
async def test_anthropic_bad_input_is_a_400_in_the_anthropic_envelope(async_client, auth, body, mentions):
    response = await async_client.post(MESSAGES, body, content_type="application/json", headers=auth)
    assert response.status_code == 400, response.content
    payload = response.json()
    assert payload["type"] == "error" and payload["error"]["type"] == "invalid_request_error"
    assert mentions.lower() in payload["error"]["message"].lower()


@pytest.mark.parametrize(("path", "shape"), [(CHAT, "openai"), (MESSAGES, "anthropic")])
async def test_a_body_over_the_limit_is_a_413(async_client, auth, settings, path, shape):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2048
    body = json.dumps({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x" * 4096}]})
    response = await async_client.post(path, body, content_type="application/json", headers=auth)
    assert response.status_code == 413
    payload = response.json()
    message = payload["error"]["message"] if shape == "openai" else payload["error"]["message"]
    assert "larger than" in message
    if shape == "anthropic":
        assert payload["error"]["type"] == "request_too_large"


async def test_a_valid_request_without_any_upstream_credential_is_a_clear_503(async_client, auth):
    body = json.dumps({"model": "deepseek-v4-flash", "messages": HI})
    response = await async_client.post(CHAT, body, content_type="application/json", headers=auth)
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "no_upstream_credential"
