"""What the gateway sends to Command Code: §3 headers, §5 envelope, thread ids, CLI version."""

from __future__ import annotations

import asyncio
import json
import re
import uuid

import httpx
import pytest

from proxy.translate.wire import UpstreamRequest
from proxy.upstream import version
from proxy.upstream.wire_headers import envelope, generate_headers, thread_id


def test_headers_follow_the_cli_order_and_values(settings):
    settings.CC_PROJECT_SLUG = "team-slug"
    settings.CC_TASTE_LEARNING = False
    headers = generate_headers("user_secret_key_1234", "0b6f1f3e-1111-4222-8333-444455556666")
    assert list(headers) == [
        "content-type",
        "User-Agent",
        "x-command-code-version",
        "x-cli-environment",
        "x-project-slug",
        "x-taste-learning",
        "x-session-id",
        "Authorization",
        "traceparent",
        "accept",
        "accept-language",
        "sec-fetch-mode",
        "accept-encoding",
        "connection",
    ]
    assert headers["User-Agent"] == "cli"
    assert headers["x-command-code-version"] == settings.CC_CLI_VERSION
    assert headers["x-cli-environment"] == "production"
    assert headers["x-project-slug"] == "team-slug"
    assert headers["x-taste-learning"] == "false"
    assert headers["Authorization"] == "Bearer user_secret_key_1234"
    assert re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-01", headers["traceparent"])
    assert generate_headers("k", "s")["traceparent"] != headers["traceparent"]


def test_thread_id_is_a_stable_uuid5_per_conversation_and_fresh_otherwise():
    first = uuid.UUID(thread_id("claude-session-abc"))
    assert first.version == 5
    assert thread_id("claude-session-abc") == str(first)
    assert thread_id("claude-session-xyz") != str(first)
    fresh = {thread_id(None) for _ in range(3)}
    assert len(fresh) == 3
    assert all(uuid.UUID(value).version == 4 for value in fresh)


def test_envelope_has_the_cli_key_order_and_shapes(settings):
    settings.CC_WORKING_DIR = "/srv/work"
    settings.CC_PERMISSION_MODE = "standard"
    request = UpstreamRequest(
        model="deepseek/deepseek-v4-flash",
        messages=[{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
        system="",
        temperature=0.2,
    )
    body = json.loads(envelope(request, "4f7f6f8e-5e0c-4a4b-9c51-3d1b2a0e9f00"))
    assert list(body) == ["config", "memory", "taste", "skills", "permissionMode", "threadId", "params"]
    assert body["config"]["workingDir"] == "/srv/work"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", body["config"]["date"])
    assert body["config"]["isGitRepo"] is False and body["config"]["structure"] == []
    assert body["memory"] is None and body["taste"] is None and body["skills"] is None
    params = body["params"]
    assert list(params)[:6] == ["model", "messages", "tools", "system", "max_tokens", "stream"]
    assert params["system"] == " "  # §5: an empty system makes the service inject its own prompt
    assert params["stream"] is True
    assert params["max_tokens"] == settings.CC_DEFAULT_MAX_TOKENS
    assert params["temperature"] == 0.2
    assert "reasoning_effort" not in params and "tool_choice" not in params


@pytest.fixture
def registry(settings, monkeypatch):
    """The npm registry, answered by a mock transport; counts the lookups."""
    calls: list[str] = []
    answer = {"status": 200, "json": {"version": "9.8.7"}}

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(str(request.url))
        if isinstance(answer["json"], Exception):
            raise answer["json"]
        return httpx.Response(answer["status"], json=answer["json"])

    monkeypatch.setattr(
        version, "registry_client", lambda: httpx.AsyncClient(transport=httpx.MockTransport(handler))
    )
    settings.CC_CLI_VERSION = "1.64.0"
    settings.CC_NPM_REGISTRY_URL = "https://registry.example"
    version.reset_version_cache()
    yield calls, answer
    version.reset_version_cache()


async def _refresh_and_wait() -> None:
    version.refresh_in_background()
    task = version._cache.task
    if task is not None:
        await task


async def test_version_is_pinned_unless_auto_refresh_is_on(registry, settings):
    calls, _ = registry
    settings.CC_CLI_VERSION_AUTO = False
    await _refresh_and_wait()
    assert calls == []
    assert version.cli_version() == "1.64.0"


async def test_auto_version_follows_npm_latest_and_checks_once_a_day(registry, settings):
    calls, _ = registry
    settings.CC_CLI_VERSION_AUTO = True
    await _refresh_and_wait()
    await _refresh_and_wait()
    assert calls == ["https://registry.example/command-code/latest"]
    assert version.cli_version() == "9.8.7"
    assert generate_headers("k", "s")["x-command-code-version"] == "9.8.7"


@pytest.mark.parametrize(
    "bad",
    [
        {"status": 500, "json": {"version": "9.9.9"}},
        {"status": 200, "json": {"version": "not a version"}},
        {"status": 200, "json": httpx.ConnectError("offline")},
    ],
)
async def test_auto_version_failures_keep_the_pinned_version(registry, settings, bad):
    _, answer = registry
    answer.update(bad)
    settings.CC_CLI_VERSION_AUTO = True
    await _refresh_and_wait()
    assert version.cli_version() == "1.64.0"
    await asyncio.sleep(0)
