"""Pass-through of Command Code keys (CCSITE_PASSTHROUGH_USER_KEYS): off by default; when on, a
client presenting ``user_...`` goes upstream with that key and is logged without it."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest

from proxy import outcomes
from proxy.upstream.client import close_upstream_client
from proxy.upstream.simulator.recorder import key_fingerprint
from proxy.upstream.simulator.scenarios import expected_text

BODY = json.dumps({"model": "deepseek-v4-flash", "messages": [{"role": "user", "content": "hi"}]})
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
async def upstream(simulator, settings):
    settings.CC_UPSTREAM_BASE_URL = simulator.url
    await close_upstream_client()
    yield simulator
    await close_upstream_client()


@pytest.fixture
def recorded():
    seen: list[outcomes.RequestOutcome] = []
    outcomes.add_recorder(seen.append)
    yield seen
    outcomes._recorders.remove(seen.append)


async def test_off_by_default_a_command_code_key_is_not_a_client_key(async_client, upstream):
    headers = {"Authorization": f"Bearer user_pass_{uuid.uuid4().hex[:12]}"}
    response = await async_client.post(
        "/v1/chat/completions", BODY, content_type="application/json", headers=headers
    )
    assert response.status_code == 401


async def test_when_on_the_request_goes_upstream_with_the_clients_key(
    async_client, upstream, settings, recorded
):
    settings.CCSITE_PASSTHROUGH_USER_KEYS = True
    secret = f"user_pass_{uuid.uuid4().hex[:12]}"
    headers = {"Authorization": f"Bearer {secret}"}
    response = await async_client.post(
        "/v1/chat/completions", BODY, content_type="application/json", headers=headers
    )
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == expected_text()
    async with httpx.AsyncClient(timeout=10) as client:
        records = (
            await client.get(f"{upstream.url}/_sim/requests", params={"path": "/alpha/generate"})
        ).json()
    assert records["requests"][-1]["key_fingerprint"] == key_fingerprint(secret)
    outcome = recorded[-1]
    assert outcome.status == "ok" and outcome.credential_label == f"passthrough …{secret[-4:]}"
    assert secret not in repr(outcome)
