"""Show a new key's secret exactly once after a POST/redirect/GET, from the session.

The creating POST stashes the secret and redirects; the page it redirects to pops it. A
refresh of that page finds nothing (no second key, no second showing), and the secret never
travels in a URL.
"""

from __future__ import annotations

from django.http import HttpRequest

SESSION_KEY = "ccsite_new_client_key"


def stash_secret(request: HttpRequest, *, key_id: int, secret: str) -> None:
    request.session[SESSION_KEY] = {"key_id": key_id, "secret": secret}


def pop_secret(request: HttpRequest, *, key_id: int) -> str | None:
    """The stashed secret of this key, removed from the session; None if already shown."""
    stashed = request.session.get(SESSION_KEY)
    if not isinstance(stashed, dict) or stashed.get("key_id") != key_id:
        return None
    del request.session[SESSION_KEY]
    return str(stashed["secret"])
