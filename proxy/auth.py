"""Client-key authentication shared by every /v1 route: Bearer or x-api-key, async, cached."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.http import HttpRequest
from ninja.security.base import AuthBase

from accounts import keys
from accounts.keycache import KeyPrincipal, key_cache
from accounts.selectors import client_key_get_by_secret
from ccsite.settings_cache import cached_settings

# Who a request belongs to when authentication is switched off for a benchmark.
ANONYMOUS = KeyPrincipal(key_id=0, key_name="auth-disabled", user_id=0, username="anonymous")


@dataclass(frozen=True, slots=True)
class PassthroughPrincipal(KeyPrincipal):
    """A client that presented its own Command Code key (CCSITE_PASSTHROUGH_USER_KEYS): the
    request goes upstream with that key; logs see only its last four characters."""

    upstream_key: str = field(default="", repr=False)


def passthrough_principal(key: str) -> PassthroughPrincipal:
    return PassthroughPrincipal(
        key_id=0, key_name="passthrough", user_id=0, username=f"passthrough …{key[-4:]}", upstream_key=key
    )


MISSING_KEY = "Missing API key: send it as 'Authorization: Bearer <key>' or 'x-api-key: <key>'."
INVALID_KEY = "Invalid API key (unknown, revoked or expired)."


def presented_key(request: HttpRequest) -> str | None:
    authorization = request.headers.get("authorization", "")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    api_key = request.headers.get("x-api-key", "").strip()
    return api_key or None


class ClientKeyAuth(AuthBase):
    """Ninja auth: returns the KeyPrincipal (as ``request.auth``) or None to refuse."""

    openapi_type = "http"
    openapi_scheme = "bearer"

    def __init__(self) -> None:
        super().__init__()
        self.is_async = True  # ninja awaits the call instead of running it in a thread

    async def __call__(self, request: HttpRequest) -> KeyPrincipal | None:  # type: ignore[override]
        if cached_settings.CCSITE_AUTH_DISABLED:
            return ANONYMOUS
        key = presented_key(request)
        if key is None:
            request.ccsite_auth_problem = MISSING_KEY  # type: ignore[attr-defined]
            return None
        if cached_settings.CCSITE_PASSTHROUGH_USER_KEYS and key.startswith("user_"):
            return passthrough_principal(key)
        principal = await client_key_get_by_secret(key)
        if principal is None:
            request.ccsite_auth_problem = INVALID_KEY  # type: ignore[attr-defined]
            request.ccsite_refused_principal = _owner_of_known_prefix(key)  # type: ignore[attr-defined]
        return principal


def _owner_of_known_prefix(key: str) -> KeyPrincipal | None:
    """Whose key it claims to be, when its prefix is a stored key's (wrong secret, revoked or
    expired): request logs record the refusal against that key. The lookup just cached it."""
    prefix = keys.key_prefix(key)
    if prefix is None:
        return None
    _, entry = key_cache.get(prefix, cached_settings.CCSITE_KEY_CACHE_SECONDS)
    return entry.principal if entry is not None else None


client_key_auth = ClientKeyAuth()
