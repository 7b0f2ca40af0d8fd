"""Django's ASGI handler without its per-request thread hops on the API path.

The stock handler wraps every request in a ``ThreadSensitiveContext`` (a new worker thread is
started and joined per request as soon as anything runs ``sync_to_async``) and sends
``request_started``/``request_finished`` through ``sync_to_async`` (two more hops). Those
signals only reset the debug query log and close stale database connections. /v1 requests
are fully async and touch the database only on cache misses, so for them this handler skips
all three and instead closes stale connections at most once a minute, in the thread where
Django's async ORM runs them. API requests also skip the middleware chain, every member of
which steps aside for them anyway. Every other path (admin, pages) keeps the stock behaviour.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from contextlib import aclosing
from functools import lru_cache
from inspect import iscoroutinefunction
from io import BytesIO
from typing import IO, Any

from asgiref.sync import sync_to_async
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.core.handlers.exception import convert_exception_to_response
from django.db import close_old_connections
from django.http import HttpResponseBase
from django.urls import Resolver404, ResolverMatch, URLResolver, get_resolver, set_script_prefix, set_urlconf
from django.utils.log import log_response

from ccsite import invalidation
from ccsite.paths import is_api_path
from ccsite.request_headers import MetaHeaders
from ccsite.request_messages import RequestMessages
from ccsite.settings_cache import cached_settings
from ccsite.stream_parts import FinalPart
from proxy.request_meta import (
    new_request_id,
    record_cancelled_before_outcome,
    request_id_of,
    stamp_request_id,
)

CONNECTION_CHECK_SECONDS = 60.0


def _close_without_signal(response: HttpResponseBase) -> None:
    """What ``response.close()`` does, minus the ``request_finished`` signal."""
    for closer in response._resource_closers:
        try:
            closer()
        except Exception:
            pass
    response.closed = True


def with_content_length(response: HttpResponseBase) -> HttpResponseBase:
    """What CommonMiddleware does on the other paths: a whole body gets its Content-Length, so
    Twisted sends it as it is rather than in HTTP/1.1 chunks (two more writes per answer)."""
    if not response.streaming and not response.has_header("Content-Length"):
        response.headers["Content-Length"] = str(len(response.content))  # type: ignore[attr-defined]
    return response


class GatewayASGIHandler(ASGIHandler):
    def __init__(self) -> None:
        super().__init__()
        self._connections_checked_at = time.monotonic()
        # Every middleware in settings steps aside for API paths (ccsite/middleware.py), so API
        # requests go straight to the view instead of through seven pass-through layers.
        self._api_chain = convert_exception_to_response(self._call_api_view)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if not invalidation.started:  # once per process: load the snapshots, start polling
            await invalidation.start()
        if scope["type"] == "http" and is_api_path(scope["path"]):
            if scope.get("root_path"):
                # The API is served at the root, and Daphne takes root_path from any client's
                # Daphne-Root-Path header: with "/v1", /v1/admin/ would resolve as /admin/ on
                # this route, past the session, CSRF and authentication middleware.
                scope = {**scope, "root_path": ""}
            await self._handle_api(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)

    async def _handle_api(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        try:
            body_file = await self._read_api_body(receive)
        except RequestAborted:
            return
        try:
            set_script_prefix(get_script_prefix(scope))
            request, error_response = self.create_request(scope, body_file)
            if request is None:
                stamp_request_id(None, error_response, new_request_id())
                await self.send_response(with_content_length(error_response), send)
                _close_without_signal(error_response)
                return
            request.headers = MetaHeaders(request.META)  # looked up by name, not parsed whole
            response = await self._respond_unless_disconnected(request, receive, send)
            if response is not None:
                _close_without_signal(response)
        finally:
            body_file.close()
        await self._check_connections()

    async def _read_api_body(self, receive: Any) -> IO[bytes]:
        """``read_body`` without its spooled temporary file when the body comes in one message.
        Daphne hands a received body over in messages of its request buffer (8 KiB, which its
        command line does not change), so that is a body under 8 KiB; longer ones go through
        ``read_body``, which spills to disk past FILE_UPLOAD_MAX_MEMORY_SIZE."""
        first = await receive()
        if first["type"] == "http.request" and not first.get("more_body", False):
            return BytesIO(first.get("body", b""))
        delivered = False

        async def replay_first() -> Any:
            nonlocal delivered
            if delivered:
                return await receive()
            delivered = True
            return first

        return await self.read_body(replay_first)

    async def _respond_unless_disconnected(self, request: Any, receive: Any, send: Any) -> Any:
        """Serve the request; if the client disconnects first, cancel the view (which closes the
        upstream stream in its ``finally``), as the stock handler does, and answer nothing.

        The view runs in this task. Under Daphne the request's messages call back on the
        disconnect (``RequestMessages``): no task listens for it. Otherwise one listener task
        does: one task and no ``asyncio.wait`` per request."""
        serving = asyncio.current_task()
        assert serving is not None
        disconnected = False

        def cancel_serving() -> None:
            nonlocal disconnected
            disconnected = True
            serving.cancel()

        messages = getattr(receive, "__self__", None)
        if isinstance(messages, RequestMessages):  # under Daphne (ccsite/daphne_tuning.py)
            stop_watching = _watch_messages(messages, cancel_serving)
        else:
            stop_watching = _watch_with_listener(self.listen_for_disconnect(receive), cancel_serving)
        try:
            return await self._serve(request, send)
        except asyncio.CancelledError:
            record_cancelled_before_outcome(request)  # gone before the view recorded anything
            if not disconnected:
                raise  # cancelled from outside (server shutdown): not ours to swallow
            return None
        finally:
            stop_watching()
            if disconnected:
                serving.uncancel()  # the cancel was ours and has been handled

    async def _serve(self, request: Any, send: Any) -> HttpResponseBase:
        response = await self._api_response(request)
        try:
            if response.streaming and getattr(response, "is_async", False) and not response.cookies:
                await self._send_stream(response, send)
            else:
                await self.send_response(with_content_length(response), send)
        except asyncio.CancelledError:
            pass  # the client went away while the body was being sent
        return response

    async def _send_stream(self, response: Any, send: Any) -> None:
        """``send_response`` for the relay's async byte stream, without the two generator layers
        Django puts around every part (``make_bytes`` of bytes is the bytes themselves; parts
        above Django's chunk size are still split). A ``FinalPart`` is the last body message,
        sent once the iterator has ended, with the end of the response."""
        headers = [(header.encode("ascii"), value.encode("latin1")) for header, value in response.items()]
        await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
        limit = self.chunk_size
        final = b""
        async with aclosing(response._iterator) as parts:  # the relay's generator, bytes only
            async for part in parts:
                if final:  # not the last after all: it goes out as it would have
                    await send({"type": "http.response.body", "body": final, "more_body": True})
                    final = b""
                if type(part) is FinalPart:
                    final = part  # held until the iterator has ended: sent with the end
                    continue
                if len(part) <= limit:
                    await send({"type": "http.response.body", "body": part, "more_body": True})
                    continue
                for chunk, _ in self.chunk_bytes(part):
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
        for chunk, last in self.chunk_bytes(final):
            await send({"type": "http.response.body", "body": chunk, "more_body": not last})

    async def _api_response(self, request: Any) -> HttpResponseBase:
        """``get_response_async`` without the middleware chain and without a thread hop to log
        an error status."""
        set_urlconf(cached_settings.ROOT_URLCONF)
        request_id_of(request)
        response: HttpResponseBase = await self._api_chain(request)
        stamp_request_id(request, response)
        if cached_settings.CCSITE_REQUEST_LOG_BODIES:
            from usage.bodies import capture

            capture(request, response)
        response._resource_closers.append(request.close)
        response._handler_class = self.__class__  # type: ignore[attr-defined]
        if response.status_code >= 400:
            log_response("%s: %s", response.reason_phrase, request.path, response=response, request=request)
        return response

    async def _call_api_view(self, request: Any) -> HttpResponseBase:
        """Resolve (remembered per path) and await an async API view.

        What ``_get_response_async`` adds around it is a no-op for API views (the view middleware
        steps aside, no API view is atomic or a template response), so only a path that does not
        resolve, or a view that is not a coroutine function, takes Django's full route (its 404
        and its thread for sync views)."""
        match = resolve_api_path(request.path_info)
        if match is None or not iscoroutinefunction(match.func):
            return await self._get_response_async(request)
        request.resolver_match = match
        response = await match.func(request, *match.args, **match.kwargs)
        self.check_response(response, match.func)
        return response

    async def _check_connections(self) -> None:
        now = time.monotonic()
        if now - self._connections_checked_at >= CONNECTION_CHECK_SECONDS:
            self._connections_checked_at = now
            await sync_to_async(close_old_connections)()


def _watch_messages(messages: RequestMessages, cancel: Callable[[], None]) -> Callable[[], None]:
    """Have ``cancel()`` called, a turn later, when the request's messages get a disconnect;
    returns what stops that (and withdraws a pending call: Daphne also puts a disconnect inside
    its last send, when the response has ended)."""
    loop = asyncio.get_running_loop()
    pending: asyncio.Handle | None = None

    def on_disconnect() -> None:
        nonlocal pending
        if pending is None:
            pending = loop.call_soon(cancel)

    messages.on_disconnect(on_disconnect)

    def stop() -> None:
        messages.on_disconnect(None)
        if pending is not None:
            pending.cancel()

    return stop


def _watch_with_listener(listen: Coroutine[Any, Any, None], cancel: Callable[[], None]) -> Callable[[], None]:
    """Run ``listen`` (Django's ``listen_for_disconnect``) as a task and call ``cancel()`` when it
    ends on a disconnect; returns what stops it."""

    def on_listener_done(listener: asyncio.Task[None]) -> None:
        if listener.cancelled():
            return
        listener.exception()  # retrieved: RequestAborted is the expected end
        cancel()

    listening = asyncio.create_task(listen)
    listening.add_done_callback(on_listener_done)

    def stop() -> None:
        listening.remove_done_callback(on_listener_done)
        listening.cancel()

    return stop


@lru_cache(maxsize=1024)
def _resolve_cached(resolver: URLResolver, path: str) -> ResolverMatch:
    return resolver.resolve(path)


def resolve_api_path(path: str) -> ResolverMatch | None:
    """The path's match in the root URLconf, remembered for the most recent 1,024 paths; None
    when nothing matches (the caller lets Django answer its 404). Matches are keyed by Django's
    cached resolver, so clearing the URL caches (a changed ``ROOT_URLCONF``) starts afresh."""
    try:
        return _resolve_cached(get_resolver(), path)
    except Resolver404:
        return None


def get_gateway_asgi_application() -> GatewayASGIHandler:
    import django

    django.setup(set_prefix=False)
    return GatewayASGIHandler()
