"""Which paths are the API: they skip the session, CSRF and admin machinery entirely."""

from __future__ import annotations

API_PREFIXES = ("/v1/", "/health")


def is_api_path(path: str) -> bool:
    return path.startswith(API_PREFIXES)
