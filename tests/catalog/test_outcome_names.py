"""Every request's outcome records the name the client sent and the model served."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import sync_to_async

from catalog import services
from proxy import outcomes


@pytest.fixture
def recorded(monkeypatch):
    seen: list[outcomes.RequestOutcome] = []
    monkeypatch.setattr(outcomes, "_recorders", [seen.append])
    return seen


@pytest.mark.django_db(transaction=True)
async def test_outcomes_record_client_and_served_names(recorded, async_client, client_key):
    await sync_to_async(services.set_enabled)(["zai-org/GLM-5"], False)
    headers = {"Authorization": f"Bearer {client_key[1]}"}
    for model in ("claude-sonnet-4-5", "gpt-4o", "glm-5"):
        body = json.dumps({"model": model, "messages": [{"role": "user", "content": "hi"}]})
        await async_client.post(
            "/v1/chat/completions", body, content_type="application/json", headers=headers
        )
    rows = [(o.client_model, o.upstream_model, o.status, o.error_kind) for o in recorded]
    assert rows == [
        # Resolved through an alias, then refused for want of a credential (none in this test).
        ("claude-sonnet-4-5", "claude-sonnet-4-6", "error", "no_upstream_credential"),
        # Unknown: nothing was served, and the name is the client's own text (unbounded).
        ("gpt-4o", "", "invalid", "model_not_found"),
        ("glm-5", "zai-org/GLM-5", "invalid", "model_disabled"),
    ]
