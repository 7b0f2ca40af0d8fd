"""django-ninja's per-request scratch response is made on first use (proxy/api.py): a view that
uses it gets what it set, one that returns its own response costs nothing for it."""

from __future__ import annotations

from django.http import HttpResponse
from ninja import Router
from ninja.renderers import JSONRenderer
from ninja.testing import TestAsyncClient

from proxy.api import GatewayNinjaAPI, api


def test_the_api_makes_no_response_up_front():
    scratch = api.create_temporal_response(None)  # type: ignore[arg-type]
    assert isinstance(scratch, HttpResponse)
    assert "headers" not in vars(scratch) and "cookies" not in vars(scratch)


async def test_a_view_that_sets_headers_and_cookies_on_it_still_gets_them():
    scratch_api = GatewayNinjaAPI(urls_namespace="scratch-test")
    router = Router()

    @router.get("/made")
    async def made(request, response: HttpResponse) -> dict:
        response["X-Made"] = "yes"
        response.set_cookie("seen", "1")
        return {"ok": True}

    scratch_api.add_router("/", router)
    answer = await TestAsyncClient(scratch_api).get("/made")
    assert answer.status_code == 200 and answer.json() == {"ok": True}
    assert answer.headers["X-Made"] == "yes"
    assert answer.headers["Content-Type"].startswith("application/json")
    assert answer.cookies["seen"].value == "1"


def test_a_body_set_as_bytes_before_first_use_is_kept():
    # ninja's create_response sets ``content`` on the scratch response. Bytes (an orjson-style
    # renderer) reach the content setter without touching anything the response lacks, so the
    # response must not be initialised (to an empty body) only afterwards, when the handler
    # reads its headers or resource closers.
    class BytesRenderer(JSONRenderer):
        def render(self, request, data, *, response_status):
            return super().render(request, data, response_status=response_status).encode()

    bytes_api = GatewayNinjaAPI(urls_namespace="scratch-bytes-test", renderer=BytesRenderer())
    scratch = bytes_api.create_temporal_response(None)  # type: ignore[arg-type]
    response = bytes_api.create_response(None, {"ok": True}, temporal_response=scratch)  # type: ignore[arg-type]
    assert response["Content-Type"].startswith("application/json")
    response._resource_closers.append(lambda: None)  # as the API handler does
    assert response.content == b'{"ok": true}'


def test_probing_a_special_name_before_first_use_leaves_it_usable():
    scratch = api.create_temporal_response(None)  # type: ignore[arg-type]
    assert not hasattr(scratch, "__html__")  # as conditional_escape and friends ask
    scratch["X-After"] = "yes"
    assert scratch["X-After"] == "yes" and scratch["Content-Type"].startswith("application/json")
