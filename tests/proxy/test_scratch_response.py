"""django-ninja's per-request scratch response is made on first use (proxy/api.py): a view that
uses it gets what it set, one that returns its own response costs nothing for it."""

from __future__ import annotations

from django.http import HttpResponse
from ninja import Router
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
