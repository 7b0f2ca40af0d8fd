"""What a hostile client can pick about the path: the API is served at the root, whatever
``root_path`` Daphne hands over (it takes one from any client's ``Daphne-Root-Path`` header)."""

from __future__ import annotations

import json

import pytest

from ccsite.paths import is_api_path
from tests.asgi_calls import call_asgi

pytestmark = pytest.mark.django_db(transaction=True)


async def _get(path: str, root_path: str) -> tuple[int, dict[bytes, bytes], bytes]:
    """GET ``path`` with ``root_path`` in the scope, as Daphne builds it for a request carrying
    ``Daphne-Root-Path: <root_path>``."""
    header = (b"daphne-root-path", root_path.encode())
    return await call_asgi("GET", path, headers=[header], root_path=root_path)


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
