"""Which paths are the API: they skip the session, CSRF and admin machinery entirely."""

from __future__ import annotations

API_PREFIX = "/v1/"
API_PATHS = frozenset({"/health"})  # exact: /healthz is a page path, with a page's 404


def is_api_path(path: str) -> bool:
    return path.startswith(API_PREFIX) or path in API_PATHS
