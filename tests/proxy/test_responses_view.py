"""POST /v1/responses in process: bad input in the OpenAI envelope, one outcome per request
under the surface name ``responses``, and the previous_response_id store's scoping."""

from __future__ import annotations

import json

import pytest

from proxy import outcomes
from proxy.outcomes import RequestOutcome
from proxy.responses_store import ResponseStore
from proxy.translate.errors import InvalidRequest

pytestmark = pytest.mark.django_db(transaction=True)

RESPONSES = "/v1/responses"


@pytest.fixture
def auth(client_key):
    return {"Authorization": f"Bearer {client_key[1]}"}


@pytest.fixture
def recorded(monkeypatch):
    seen: list[RequestOutcome] = []
    monkeypatch.setattr(outcomes, "_recorders", [seen.append])
    return seen


@pytest.mark.parametrize(
    ("body", "mentions"),
    [
        ("not json", "not valid JSON"),
        (json.dumps({"model": "deepseek-v4-flash"}), "input"),
        (json.dumps({"model": "deepseek-v4-flash", "input": []}), "input"),
        (json.dumps({"model": "deepseek-v4-flash", "input": [{"type": "hologram"}]}), "hologram"),
        (
            json.dumps({"model": "deepseek-v4-flash", "input": "hi", "previous_response_id": "resp_nope"}),
            "resp_nope",
        ),
        (
            json.dumps({"model": "deepseek-v4-flash", "input": "hi", "previous_response_id": 5}),
            "previous_response_id",
        ),
        (json.dumps({"model": 7, "input": "hi"}), "model"),
    ],
)
async def test_bad_input_is_a_400_in_the_openai_envelope(async_client, auth, recorded, body, mentions):
    response = await async_client.post(RESPONSES, body, content_type="application/json", headers=auth)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["type"] == "invalid_request_error"
    assert mentions.lower() in (error["message"] + str(error["param"])).lower()
    if body != "not json":
        assert [(o.surface, o.status) for o in recorded] == [("responses", "invalid")]


async def test_an_unknown_previous_response_has_its_own_code(async_client, auth):
    body = json.dumps({"model": "m", "input": "hi", "previous_response_id": "resp_gone"})
    response = await async_client.post(RESPONSES, body, content_type="application/json", headers=auth)
    assert response.json()["error"]["code"] == "previous_response_not_found"


async def test_a_servable_request_without_credentials_is_recorded_as_responses(async_client, auth, recorded):
    body = json.dumps({"model": "deepseek-v4-flash", "input": "hi"})
    response = await async_client.post(RESPONSES, body, content_type="application/json", headers=auth)
    assert response.status_code == 503 and response.json()["error"]["code"] == "no_upstream_credential"
    assert [(o.surface, o.status, o.upstream_model) for o in recorded] == [
        ("responses", "error", "deepseek/deepseek-v4-flash")
    ]


async def test_a_missing_key_is_a_401_in_the_openai_envelope(async_client):
    body = json.dumps({"model": "deepseek-v4-flash", "input": "hi"})
    response = await async_client.post(RESPONSES, body, content_type="application/json")
    assert response.status_code == 401 and "error" in response.json()


def test_the_store_is_scoped_per_key_chains_and_expires(settings):
    settings.CCSITE_RESPONSES_STORE_SECONDS = 60
    now = [1000.0]
    store = ResponseStore(clock=lambda: now[0])
    store.save(1, "resp_a", parent=None, items=[{"n": 1}, {"n": 2}])
    store.save(1, "resp_b", parent="resp_a", items=[{"n": 3}])
    assert store.conversation(1, "resp_b") == [{"n": 1}, {"n": 2}, {"n": 3}]
    with pytest.raises(InvalidRequest) as other_key:
        store.conversation(2, "resp_b")
    assert other_key.value.status == 400 and other_key.value.param == "previous_response_id"
    now[0] += 59  # each use renews the whole chain
    assert len(store.conversation(1, "resp_b")) == 3
    now[0] += 61
    with pytest.raises(InvalidRequest):
        store.conversation(1, "resp_a")


def test_the_store_keeps_at_most_its_limit_dropping_the_least_recently_used(settings):
    settings.CCSITE_RESPONSES_STORE_SECONDS, settings.CCSITE_RESPONSES_STORE_MAX = 60, 2
    store = ResponseStore()
    store.save(1, "resp_a", parent=None, items=[])
    store.save(1, "resp_b", parent=None, items=[])
    store.conversation(1, "resp_a")  # used: now the most recent
    store.save(1, "resp_c", parent=None, items=[])
    assert store.conversation(1, "resp_a") == []
    with pytest.raises(InvalidRequest):
        store.conversation(1, "resp_b")


def test_a_store_of_size_zero_keeps_nothing(settings):
    settings.CCSITE_RESPONSES_STORE_MAX = 0
    store = ResponseStore()
    store.save(1, "resp_a", parent=None, items=[])
    with pytest.raises(InvalidRequest):
        store.conversation(1, "resp_a")
