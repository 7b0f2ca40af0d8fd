"""The /v1 path runs natively async (no middleware adapted to sync) and, with warm caches, costs
no database query per request."""

from __future__ import annotations

import json
import logging

import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient

from tests.asgi_calls import call_asgi
from tests.factories import make_client_key
from tests.queries import count_queries

pytestmark = pytest.mark.django_db(transaction=True)


async def test_api_path_has_no_sync_middleware_adaptation(caplog, settings):
    settings.DEBUG = True  # Django only logs handler adaptation in DEBUG
    _, secret = await sync_to_async(make_client_key)()
    with caplog.at_level(logging.DEBUG, logger="django.request"):
        # The handler (and its middleware chain) is built here, inside the capture.
        client = AsyncClient()
        response = await client.get("/v1/models", headers={"Authorization": f"Bearer {secret}"})
    assert response.status_code == 200
    adapted = [record for record in caplog.records if "adapted" in record.getMessage()]
    assert adapted == [], [record.getMessage() for record in adapted]


async def test_authenticated_request_with_warm_cache_makes_no_query(async_client):
    _, secret = await sync_to_async(make_client_key)()
    headers = {"Authorization": f"Bearer {secret}"}
    assert (await async_client.get("/v1/models", headers=headers)).status_code == 200  # warms the cache
    with count_queries() as queries:
        response = await async_client.get("/v1/models", headers=headers)
    assert response.status_code == 200
    assert len(queries) == 0, queries.sql


async def test_a_restricted_keys_model_list_and_lookup_make_no_query(async_client):
    key, secret = await sync_to_async(make_client_key)()
    key.allowed_models = ["deepseek/*"]
    await sync_to_async(key.save)(update_fields=["allowed_models"])
    headers = {"Authorization": f"Bearer {secret}"}
    assert (await async_client.get("/v1/models", headers=headers)).status_code == 200  # warms the cache
    with count_queries() as queries:
        listed = await async_client.get("/v1/models", headers=headers)
        refused = await async_client.get("/v1/models/claude-opus-4-7", headers=headers)
    assert listed.status_code == 200 and refused.status_code == 403
    assert {entry["owned_by"] for entry in listed.json()["data"]} == {"deepseek"}  # ids and aliases
    assert len(queries) == 0, queries.sql


async def _call_asgi(path: str, secret: str, body_parts: list[bytes]) -> tuple[int, bytes]:
    """POST ``body_parts`` to the gateway's ASGI application, one ``http.request`` message each."""
    length = str(sum(len(part) for part in body_parts)).encode()
    headers = [
        (b"authorization", f"Bearer {secret}".encode()),
        (b"content-type", b"application/json"),
        (b"content-length", length),
    ]
    status, _, content = await call_asgi("POST", path, headers=headers, body_parts=body_parts)
    return status, content


async def test_a_body_sent_in_several_asgi_messages_is_read_whole_like_one_sent_at_once():
    _, secret = await sync_to_async(make_client_key)()
    body = json.dumps({"model": "no-such-model-anywhere", "messages": [{"role": "user", "content": "hi"}]})
    raw = body.encode()
    at_once = await _call_asgi("/v1/chat/completions", secret, [raw])
    in_parts = await _call_asgi("/v1/chat/completions", secret, [raw[:7], raw[7:20], raw[20:]])
    assert at_once[0] == in_parts[0] == 404  # an answer about the model: the whole body was read
    for _, content in (at_once, in_parts):
        error = json.loads(content)["error"]
        assert error["code"] == "model_not_found" and "no-such-model-anywhere" in error["message"]


async def test_api_paths_resolve_once_per_path_and_unknown_ones_are_still_enveloped_404s():
    from ccsite.handler import resolve_api_path

    assert resolve_api_path("/v1/models/some-model") is resolve_api_path("/v1/models/some-model")
    assert resolve_api_path("/v1/models/some-model").kwargs == {"model_id": "some-model"}
    assert resolve_api_path("/v1/no/such/route").func.__name__ == "unknown_api_route"  # the /v1 catch-all
    assert resolve_api_path("/nothing-routes-here") is None  # Django's own 404 answers it
    _, secret = await sync_to_async(make_client_key)()
    status, content = await _call_asgi("/v1/no/such/route", secret, [b"{}"])
    assert status == 404 and "error" in json.loads(content)
