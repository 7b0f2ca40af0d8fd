"""Unknown /v1 routes get a 404 in the caller's envelope, not Django's HTML page."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from proxy.surfaces import error_response, surface_of
from proxy.translate.errors import NOT_FOUND, ClientError


async def unknown_api_route(request: HttpRequest) -> HttpResponse:
    message = f"Unknown endpoint {request.method} {request.path}."
    return error_response(surface_of(request), ClientError(NOT_FOUND, message, code="unknown_url"))
