from __future__ import annotations

import importlib
import os

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.core.exceptions import ImproperlyConfigured
from django.db import connection

import ccsite.settings as settings_module
from ccsite import invalidation
from ccsite.asgi import application
from tests.factories import make_client_key

pytestmark = pytest.mark.django_db(transaction=True)


async def test_health_reports_status_version_and_database(async_client, settings):
    response = await async_client.get("/health")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "version": settings.VERSION,
        "database": "ok",
        "database_engine": connection.vendor,
        "redis": "not configured" if not settings.REDIS_URL else "ok",
        "pid": os.getpid(),
        "snapshots": invalidation.loaded_versions(),
    }


async def test_head_on_any_path_answers_at_once_without_auth():
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        for path in ("/api/hello", "/v1/messages", "/anything/at/all"):
            response = await client.head(path)
            assert response.status_code == 200
            assert response.content == b""


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer ccs_wrong"}, {"x-api-key": "ccs_wrong"}, {"Authorization": "Basic abc"}],
)
async def test_openai_style_request_without_a_valid_key_is_401_in_openai_envelope(async_client, headers):
    response = await async_client.get("/v1/models", headers=headers)
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["code"] == "invalid_api_key"
    assert "API key" in error["message"]


@pytest.mark.parametrize("headers", [{}, {"x-api-key": "sk-ant-wrong"}, {"Authorization": "Bearer nope"}])
async def test_anthropic_style_request_without_a_valid_key_is_401_in_anthropic_envelope(
    async_client, headers
):
    response = await async_client.get("/v1/models", headers={"anthropic-version": "2023-06-01", **headers})
    assert response.status_code == 401
    body = response.json()
    assert body["type"] == "error" and body["error"]["type"] == "authentication_error"


@pytest.mark.parametrize("style", ["bearer", "x-api-key"])
async def test_a_valid_key_is_accepted_in_either_header(async_client, style):
    _, secret = await sync_to_async(make_client_key)()
    headers = {"Authorization": f"Bearer {secret}"} if style == "bearer" else {"x-api-key": secret}
    response = await async_client.get("/v1/models", headers=headers)
    assert response.status_code == 200
    assert response.json()["object"] == "list"


async def test_models_answer_in_the_anthropic_shape_for_anthropic_clients(async_client):
    _, secret = await sync_to_async(make_client_key)()
    response = await async_client.get(
        "/v1/models", headers={"x-api-key": secret, "anthropic-version": "2023-06-01"}
    )
    body = response.json()
    # Anthropic's default page is 20 models; the catalog has more.
    assert body["has_more"] is True and len(body["data"]) == 20 and body["data"][0]["type"] == "model"


@pytest.mark.parametrize("path", ["/v1/nothing-here", "/v1/"])
async def test_unknown_api_route_is_404_in_the_callers_envelope(async_client, path):
    response = await async_client.post(path, data=b"{}", content_type="application/json")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "unknown_url"


async def test_the_api_root_is_a_json_404_and_the_openapi_schema_still_has_its_paths(async_client):
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        root = await client.get("/v1/")
    assert root.status_code == 404 and root.json()["error"]["code"] == "unknown_url"
    schema = (await async_client.get("/v1/openapi.json")).json()
    assert "/v1/chat/completions" in schema["paths"]


async def test_auth_can_be_switched_off_for_benchmarks_only(async_client, settings):
    settings.CCSITE_AUTH_DISABLED = True
    response = await async_client.get("/v1/models")
    assert response.status_code == 200


def test_auth_switch_is_refused_beyond_loopback(monkeypatch):

    monkeypatch.setenv("CCSITE_AUTH_DISABLED", "1")
    monkeypatch.setenv("ALLOWED_HOSTS", "gateway.example.com")
    with pytest.raises(ImproperlyConfigured, match="loopback"):
        importlib.reload(settings_module)
    monkeypatch.undo()
    importlib.reload(settings_module)
