"""What a hostile client can pick about the path: the API is served at the root, whatever
``root_path`` Daphne hands over (it takes one from any client's ``Daphne-Root-Path`` header)."""

from __future__ import annotations

import asyncio
import json

import pytest

from ccsite.paths import is_api_path

pytestmark = pytest.mark.django_db(transaction=True)


async def _get(path: str, root_path: str) -> tuple[int, dict[bytes, bytes], bytes]:
    """GET ``path`` from the gateway's ASGI application with ``root_path`` in the scope, as Daphne
    builds it for a request carrying ``Daphne-Root-Path: <root_path>``."""
    from ccsite.asgi import application

    sent: list[dict] = []
    delivered = False

    async def receive() -> dict:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": root_path,
        "headers": [(b"host", b"testserver"), (b"daphne-root-path", root_path.encode())],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    await asyncio.wait_for(application(scope, receive, send), timeout=30)
    headers = {name.lower(): value for name, value in sent[0]["headers"]}
    return sent[0]["status"], headers, b"".join(message.get("body", b"") for message in sent[1:])


@pytest.mark.parametrize("path", ["/v1/admin/", "/v1/login/", "/v1/keys/new"])
async def test_a_client_chosen_root_path_does_not_reach_pages_past_their_middleware(path):
    # With root_path "/v1", Django would resolve /v1/admin/ as /admin/: the admin or a portal
    # page, on the API route that skips the session, CSRF and authentication middleware (a 500).
    status, headers, content = await _get(path, root_path="/v1")
    assert status == 404
    assert headers[b"content-type"] == b"application/json"
    assert json.loads(content)["error"]["code"] == "unknown_url"


async def test_an_api_route_is_still_served_when_a_root_path_is_given():
    status, _, content = await _get("/health", root_path="/health")
    assert status == 200 and json.loads(content)["status"] == "ok"


@pytest.mark.parametrize(
    ("path", "api"),
    [("/health", True), ("/v1/models", True), ("/healthz", False), ("/health/x", False), ("/v1", False)],
)
def test_only_the_api_paths_take_the_api_route(path, api):
    assert is_api_path(path) is api
