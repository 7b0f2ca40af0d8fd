"""``request.headers`` for API requests, read from ``request.META`` name by name.

Django's ``HttpHeaders`` converts every META entry into a header name when it is built: on a
/v1 request that reads three or four headers (the key, the user agent, a session hint) it was
most of the cost of asking for one. ``MetaHeaders`` answers the same lookups from META directly
and builds Django's mapping only if someone iterates it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from django.http.request import HttpHeaders


class MetaHeaders(Mapping[str, str]):
    """Case-insensitive header lookups on a WSGI-style META dict, as ``HttpHeaders`` gives them:
    ``Content-Type`` and ``Content-Length`` are META's ``CONTENT_TYPE`` and ``CONTENT_LENGTH``,
    any other ``Name-Of-Header`` is ``HTTP_NAME_OF_HEADER`` (an underscore in a looked-up name
    counts as a hyphen, as in Django)."""

    __slots__ = ("_meta", "_parsed")

    def __init__(self, meta: Mapping[str, Any]) -> None:
        self._meta = meta
        self._parsed: HttpHeaders | None = None

    def __getitem__(self, name: str) -> str:
        key = name.upper().replace("-", "_")
        if key not in HttpHeaders.UNPREFIXED_HEADERS:
            key = HttpHeaders.HTTP_PREFIX + key
        return self._meta[key]

    def _all(self) -> HttpHeaders:
        if self._parsed is None:
            self._parsed = HttpHeaders(self._meta)
        return self._parsed

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())
