"""The /v1 path runs natively async (no middleware adapted to sync) and, with warm caches, costs
no database query per request."""

from __future__ import annotations

import logging

import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient

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
