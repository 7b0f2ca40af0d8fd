"""One measured fix to Twisted's HTTP server, which Daphne serves every request through.

Twisted finds out whether a request body is a form by parsing its Content-Type with the
``email`` package's header registry: about 9% of the gateway's CPU on small requests, for a
question a split answers. The replacement returns the same lowercased ``type/subtype`` (or
``text/plain`` for a malformed value, as the email parser does). It is installed only if
Twisted still has the function it replaces.
"""

from __future__ import annotations


def content_type_of(line: bytes) -> bytes:
    value = line.split(b";", 1)[0].strip().lower()
    return value if value.count(b"/") == 1 else b"text/plain"


def install() -> bool:
    from twisted.web import http

    if not callable(getattr(http, "_parseContentType", None)):
        return False
    http._parseContentType = content_type_of
    return True
