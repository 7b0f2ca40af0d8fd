"""The NinjaAPI of the /v1 surfaces and the handlers that keep every error in its envelope."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseBase, HttpResponseNotAllowed
from django.urls import URLPattern
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError

from proxy.outcomes import record_outcome
from proxy.request_meta import start_outcome
from proxy.surfaces import error_response, surface_name_of, surface_of
from proxy.translate.errors import (
    INTERNAL,
    INVALID_REQUEST,
    METHOD_NOT_ALLOWED,
    NOT_FOUND,
    ClientError,
    FailedResponse,
    InvalidRequest,
    authentication_error,
    invalid_request_error,
    upstream_error,
)
from proxy.upstream.errors import UpstreamError
from proxy.views import anthropic_messages, me, openai_chat, openai_responses
from proxy.views import models as models_views
from proxy.views.fallback import unknown_api_route

logger = logging.getLogger(__name__)


class _ScratchResponse(HttpResponse):
    """django-ninja's per-request scratch response (``create_temporal_response``): a view may set
    its status, headers and cookies through a ``response`` argument, and a view's result that is
    not a response is rendered into it. Every /v1 view returns a response of its own, so the
    scratch one is thrown away unused; it is initialised on first use instead of before every
    view (an HttpResponse's init, with its header map and cookie jar, was 4.5 us a request)."""

    def __init__(self, content_type: str) -> None:  # HttpResponse.__init__ runs on first use
        self.__dict__["_deferred_content_type"] = content_type

    def _initialise(self) -> bool:
        content_type = self.__dict__.pop("_deferred_content_type", None)
        if content_type is None:
            return False
        HttpResponse.__init__(self, b"", content_type=content_type)
        return True

    def __getattr__(self, name: str) -> Any:
        # Reached only for an attribute the instance lacks: before first use, any set in init.
        # A special name (``hasattr(r, "__html__")``) is no use of the response: it stays deferred.
        if name.startswith("__") or not self._initialise():
            raise AttributeError(name)
        return getattr(self, name)

    def __setattr__(self, name: str, value: Any) -> None:
        # Any assignment is a use: init first, so it cannot undo what is set (``content`` set to
        # bytes, ``status_code``, ``charset``), as it would if it ran at a later read.
        if "_deferred_content_type" in self.__dict__:
            self._initialise()
        super().__setattr__(name, value)


class GatewayNinjaAPI(NinjaAPI):
    def create_temporal_response(self, request: HttpRequest) -> HttpResponse:
        return _ScratchResponse(self.get_content_type())


api = GatewayNinjaAPI(title="ccsite", version="1", urls_namespace="v1", docs_url="/docs")


@api.exception_handler(InvalidRequest)
def on_invalid_request(request: HttpRequest, exc: InvalidRequest) -> HttpResponse:
    return error_response(surface_of(request), invalid_request_error(exc))


@api.exception_handler(AuthenticationError)
def on_authentication_error(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    problem = getattr(request, "ccsite_auth_problem", None)
    error = authentication_error(problem) if problem else authentication_error()
    owner = getattr(request, "ccsite_refused_principal", None)
    if owner is not None:  # a stored key's prefix: log the refusal against that key
        outcome = start_outcome(request, surface_name_of(request), owner)
        outcome.set_error("invalid_api_key", error.message, status="unauthorized", error=error)
        record_outcome(outcome)
    return error_response(surface_of(request), error)


@api.exception_handler(UpstreamError)
def on_upstream_error(request: HttpRequest, exc: UpstreamError) -> HttpResponse:
    return error_response(surface_of(request), upstream_error(exc.failure))


@api.exception_handler(FailedResponse)
def on_failed_response(request: HttpRequest, exc: FailedResponse) -> HttpResponse:
    return error_response(surface_of(request), exc.error)


@api.exception_handler(ValidationError)
def on_validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    return error_response(surface_of(request), ClientError(INVALID_REQUEST, f"Invalid request: {exc.errors}"))


@api.exception_handler(HttpError)
def on_http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    error_class = NOT_FOUND if exc.status_code == 404 else INVALID_REQUEST
    return error_response(surface_of(request), ClientError(error_class, str(exc)))


@api.exception_handler(Exception)
def on_unexpected_error(request: HttpRequest, exc: Exception) -> HttpResponse:
    # A bug, not the client's fault: log it with the traceback, tell the client no internals.
    logger.exception("unhandled error on %s %s", request.method, request.path)
    return error_response(surface_of(request), ClientError(INTERNAL, "Internal gateway error."))


api.add_router("/", models_views.router)
api.add_router("/", openai_chat.router)
api.add_router("/", openai_responses.router)
api.add_router("/", anthropic_messages.router)
api.add_router("/", me.router)


View = Callable[..., Awaitable[HttpResponseBase]]


def method_not_allowed(request: HttpRequest, allowed: str) -> HttpResponse:
    """405 in the caller's envelope, with ``Allow`` (django-ninja's own is text/html)."""
    error = ClientError(
        METHOD_NOT_ALLOWED,
        f"{request.method} is not allowed on {request.path}; allowed: {allowed}.",
        code="method_not_allowed",
    )
    response = error_response(surface_of(request), error)
    response["Allow"] = allowed
    return response


def _enveloped_405(view: View) -> View:
    async def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        response = await view(request, *args, **kwargs)
        if isinstance(response, HttpResponseNotAllowed):
            return method_not_allowed(request, response["Allow"])
        return response

    wrapper.csrf_exempt = True  # type: ignore[attr-defined]
    return wrapper


def api_urls() -> tuple[list[Any], str, str]:
    """``api.urls`` with every route's wrong-method answer in the surface's JSON envelope, and
    ``/v1/`` itself answered as an unknown route (django-ninja's root view raises an HTML 404;
    its pattern stays, by name, for the OpenAPI schema's paths)."""
    patterns, app_name, namespace = api.urls
    for pattern in patterns:
        if not isinstance(pattern, URLPattern):
            continue
        if pattern.name == "api-root":
            pattern.callback = unknown_api_route
        elif inspect.iscoroutinefunction(pattern.callback):
            pattern.callback = _enveloped_405(pattern.callback)
    return patterns, app_name, namespace
