"""GET /metrics: the Prometheus text format (proxy/metrics.py), for a scraper only.

With ``CCSITE_METRICS_TOKEN`` set, a caller must send ``Authorization: Bearer <token>``.
Without it, only loopback callers are answered: the peer address and every address a reverse
proxy forwarded (``X-Forwarded-For``, ``X-Real-IP``) must be loopback, so a remote client
reaching the gateway through nginx is refused too. Refusals are 403 (no token configured) or
401 (wrong or missing token), JSON like the other non-API errors.
"""

from __future__ import annotations

import hmac
import ipaddress

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST

from proxy import metrics
from proxy.surfaces import json_response


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.strip().strip("[]")).is_loopback
    except ValueError:
        return False


def _only_loopback(request: HttpRequest) -> bool:
    addresses = [request.META.get("REMOTE_ADDR", "")]
    for header in ("HTTP_X_FORWARDED_FOR", "HTTP_X_REAL_IP"):
        if header in request.META:
            addresses += request.META[header].split(",")
    return all(_is_loopback(address) for address in addresses)


def _token_ok(request: HttpRequest, token: str) -> bool:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


async def metrics_view(request: HttpRequest) -> HttpResponse:
    if request.method != "GET":
        return json_response({"error": "method not allowed"}, status=405)
    token = settings.CCSITE_METRICS_TOKEN
    if token and not _token_ok(request, token):
        body = {"error": "a valid bearer token is required"}
        return json_response(body, status=401, headers={"WWW-Authenticate": "Bearer"})
    if not token and not _only_loopback(request):
        return json_response({"error": "metrics are served to loopback callers only"}, status=403)
    body = await sync_to_async(metrics.exposition, thread_sensitive=False)()
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)
