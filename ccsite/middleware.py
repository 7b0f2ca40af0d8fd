"""Django's stock middleware, made free on the API path.

Under ASGI, ``MiddlewareMixin`` runs every ``process_request``/``process_response`` through
``sync_to_async``: two thread hops per middleware per request. The /v1 API needs none of what
these do (sessions, CSRF, messages, admin security headers), so each class here hands API
requests straight to the next layer and keeps the stock behaviour for the admin and pages.
They stay subclasses of the originals, so Django's admin checks still recognise them.
"""

from __future__ import annotations

from django.contrib.auth import middleware as auth_middleware
from django.contrib.messages import middleware as messages_middleware
from django.contrib.sessions import middleware as sessions_middleware
from django.middleware import clickjacking, common, csrf, security

from ccsite.paths import is_api_path


class _ApiBypass:
    """Mixin for a MiddlewareMixin subclass: skip the middleware entirely on API paths."""

    async def __acall__(self, request):  # type: ignore[no-untyped-def]
        if is_api_path(request.path):
            return await self.get_response(request)  # type: ignore[attr-defined]
        return await super().__acall__(request)  # type: ignore[misc]


class SecurityMiddleware(_ApiBypass, security.SecurityMiddleware):
    pass


class SessionMiddleware(_ApiBypass, sessions_middleware.SessionMiddleware):
    pass


class CommonMiddleware(_ApiBypass, common.CommonMiddleware):
    pass


class CsrfViewMiddleware(_ApiBypass, csrf.CsrfViewMiddleware):
    async def process_view(self, request, callback, callback_args, callback_kwargs):  # type: ignore[no-untyped-def, override]
        # A coroutine, so Django does not wrap it in sync_to_async for every view call; the
        # stock check is pure CPU (cookie and header comparison), safe to run on the loop.
        if is_api_path(request.path):
            return None
        return super().process_view(request, callback, callback_args, callback_kwargs)


class AuthenticationMiddleware(_ApiBypass, auth_middleware.AuthenticationMiddleware):
    pass


class MessageMiddleware(_ApiBypass, messages_middleware.MessageMiddleware):
    pass


class XFrameOptionsMiddleware(_ApiBypass, clickjacking.XFrameOptionsMiddleware):
    pass
