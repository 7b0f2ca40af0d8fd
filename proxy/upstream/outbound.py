"""Which outbound HTTP(S) proxy a call goes through: ``CC_UPSTREAM_PROXY`` or the environment.

``proxy_for(url)`` is the one rule for every outbound call (the upstream client in http1.py,
billing and catalog calls, image fetching): ``None`` when the host matches ``NO_PROXY``
(comma-separated hosts, domain suffixes, ``*``), else ``CC_UPSTREAM_PROXY`` when set, else
``HTTPS_PROXY`` for https URLs and ``HTTP_PROXY`` for http URLs (either case, as curl reads
them). HTTPS through a proxy is a CONNECT tunnel; the TLS session is end to end.
"""

from __future__ import annotations

import urllib.request
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings


def _no_proxy(host: str) -> bool:
    environment = urllib.request.getproxies_environment()
    return bool(environment.get("no")) and bool(urllib.request.proxy_bypass_environment(host, environment))


def proxy_for(url: str) -> str | None:
    parts = urlsplit(url)
    host = parts.hostname or ""
    if not host or _no_proxy(host if parts.port is None else f"{host}:{parts.port}"):
        return None
    explicit = getattr(settings, "CC_UPSTREAM_PROXY", "")
    if explicit:
        return str(explicit)
    return urllib.request.getproxies_environment().get(parts.scheme) or None


def outbound_client_options(url: str | None = None, *, timeout: float) -> dict[str, Any]:
    """httpx.AsyncClient keyword arguments for calls to ``url`` (default: the upstream)."""
    target = url or settings.CC_UPSTREAM_BASE_URL
    return {"timeout": timeout, "proxy": proxy_for(target), "trust_env": False}
