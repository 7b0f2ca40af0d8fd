"""Four trims of Daphne's per-request work: a finished HTTP request is forgotten when it
finishes, not on the next sweep; a plain HTTP request's application starts without Twisted's
Deferred machinery; its messages come in a ``RequestMessages``; and a streamed response's
last body message leaves with the response's end in one write.

Daphne keeps every request in ``Server.connections`` until ``application_checker``, a sweep
that runs once a second, finds its application done and its response sent; a second sweep,
``timeout_checker``, visits every entry every two seconds. At a few hundred requests a second
both walk hundreds of finished requests per pass: in scenario d of ``make bench`` the sweep
alone was 1.3% of the gateway's CPU. Here each application, when it ends without an error,
removes its entry itself if the response has already gone (``protocol_disconnected`` was
called). Applications that fail or are cancelled stay for the sweep, which logs and reports
them exactly as before.

An HTTP request's messages reach its application through a ``RequestMessages``
(``ccsite/request_messages.py``), which the API handler watches for the client's disconnect
without a task of its own.

A chunked response's last body message (for a relayed stream, its closing frames) and the
chunked terminator leave in one write (``ccsite.response_head.last_write_joined``), not two.

Daphne's ``WebRequest.process`` is an ``inlineCallbacks`` generator that wraps the (synchronous)
``create_application`` in ``maybeDeferred``: three Deferreds and a generator per request, on
the way from the request's last byte to the application. ``start_http_application`` does the
same steps for a request that asks for no protocol upgrade, in the same order, with the same
400 and 500 answers; an ``Upgrade`` request (WebSocket) still takes Daphne's own path.

Installed only when Daphne's server module is loaded (the process runs under Daphne) and
still has what this relies on.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
import traceback
from functools import partial
from typing import Any
from urllib.parse import unquote

from ccsite.request_messages import RequestMessages

logger = logging.getLogger("daphne.http_protocol")  # where Daphne logs its own failures


def _forget_when_done(server: Any, protocol: Any, instance: asyncio.Future[Any]) -> None:
    details = server.connections.get(protocol)
    if details is None or details.get("application_instance") is not instance:
        return
    if instance.cancelled() or instance.exception() is not None:
        return  # the sweep logs it and answers the client, as Daphne does
    if details.get("disconnected"):
        del server.connections[protocol]


def _invalid_header(request: Any, name_pattern: Any, invalid_value_bytes: frozenset[int]) -> str | None:
    """Daphne's header checks: a name outside RFC 9110's token characters, or a value with
    bytes its parser refuses (vertical tab, form feed, separators, NEL)."""
    for name, values in request.requestHeaders.getAllRawHeaders():
        if not name_pattern.fullmatch(name):
            return "Invalid header name"
        for value in values:
            if invalid_value_bytes.intersection(value):
                return "Invalid header value"
    return None


def _http_scope(request: Any) -> dict[str, Any] | None:
    """The ASGI HTTP scope Daphne builds for ``request``; None after answering a 400."""
    utils = sys.modules["daphne.utils"]
    problem = _invalid_header(request, utils.HEADER_NAME_RE, utils.INVALID_HEADER_VALUE_BYTES)
    if problem is not None:
        request.basic_error(400, b"Bad Request", problem)
        return None
    if hasattr(request.client, "host") and hasattr(request.client, "port"):
        request.client_addr = [str(request.client.host), request.client.port]
        request.server_addr = [str(request.host.host), request.host.port]
    request.client_scheme = "https" if request.isSecure() else "http"
    server = request.server
    if server.proxy_forwarded_address_header:
        request.client_addr, request.client_scheme = utils.parse_x_forwarded_for(
            request.requestHeaders,
            server.proxy_forwarded_address_header,
            server.proxy_forwarded_port_header,
            server.proxy_forwarded_proto_header,
            request.client_addr,
            request.client_scheme,
        )
    try:
        path = request.path.decode("ascii")
    except UnicodeDecodeError:
        request.path = b"/"
        request.basic_error(400, b"Bad Request", "Invalid characters in path")
        return None
    request.query_string = b""
    if b"?" in request.uri:
        request.query_string = request.uri.split(b"?", 1)[1]
        try:
            request.query_string.decode("ascii")
        except UnicodeDecodeError:
            request.basic_error(400, b"Bad Request", "Invalid query string")
            return None
    request.clean_headers, request.root_path = [], server.root_path
    for name, values in request.requestHeaders.getAllRawHeaders():
        if b"_" in name:  # CVE-2015-0219: no header may pose as another by its underscore
            continue
        lowered = name.lower()
        for value in values:
            if lowered == b"daphne-root-path":
                request.root_path = unquote(value.decode("ascii"))
            else:
                request.clean_headers.append((lowered, value))
    return {
        "type": "http",
        "http_version": request.clientproto.split(b"/")[-1].decode("ascii"),
        "method": request.method.decode("ascii"),
        "path": unquote(path),
        "raw_path": request.path,
        "root_path": request.root_path,
        "scheme": request.client_scheme,
        "query_string": request.query_string,
        "headers": request.clean_headers,
        "client": request.client_addr,
        "server": request.server_addr,
    }


def start_http_application(request: Any) -> None:
    """Daphne's ``WebRequest.process`` for a request without ``Upgrade``: check it, build its
    scope, start its application and queue its body in messages of the request buffer size."""
    try:
        request.request_start = time.time()
        scope = _http_scope(request)
        if scope is None:
            return
        request.content.seek(0, 0)
        request.application_queue = request.server.create_application(request, scope)
        if request.application_queue is None or request.content.closed:
            return  # the client went away meanwhile
        buffer_size = request.server.request_buffer_size
        while True:
            chunk = request.content.read(buffer_size)
            more_body = len(chunk) >= buffer_size
            request.application_queue.put_nowait(
                {"type": "http.request", "body": chunk, "more_body": more_body}
            )
            if not more_body:
                break
    except Exception:
        logger.error(traceback.format_exc())
        request.basic_error(500, b"Internal Server Error", "Daphne HTTP processing error")


def _install_joined_end() -> bool:
    """A chunked response's last body message: its chunk and the terminator in one write."""
    module = sys.modules.get("daphne.http_protocol")
    request_class = getattr(module, "WebRequest", None)
    if request_class is None or getattr(request_class, "_ccsite_joined_end", False):
        return False
    from ccsite.response_head import last_write_joined

    daphne_handle_reply = request_class.handle_reply

    def handle_reply(self: Any, message: Any) -> Any:
        if (
            message.get("type") == "http.response.body"
            and not message.get("more_body", False)
            and self.startedWriting
            and self.chunked
            and self.channel is not None
        ):
            with last_write_joined(self.channel):
                return daphne_handle_reply(self, message)
        return daphne_handle_reply(self, message)

    request_class.handle_reply = handle_reply
    request_class._ccsite_joined_end = True
    return True


def _install_lean_process() -> bool:
    module = sys.modules.get("daphne.http_protocol")
    request_class = getattr(module, "WebRequest", None)
    utils = sys.modules.get("daphne.utils")
    if request_class is None or getattr(request_class, "_ccsite_lean", False):
        return False
    if not all(hasattr(utils, name) for name in ("HEADER_NAME_RE", "INVALID_HEADER_VALUE_BYTES")):
        return False
    daphne_process = request_class.process

    def process(self: Any) -> Any:
        if self.requestHeaders.hasHeader(b"upgrade"):
            return daphne_process(self)  # WebSocket handshakes (and any other upgrade)
        start_http_application(self)
        return None

    request_class.process = process
    request_class._ccsite_lean = True
    return True


def _create_http_application(server: Any, protocol: Any, scope: dict[str, Any]) -> RequestMessages | None:
    """Daphne's ``create_application`` for an HTTP request, step for step, with the request's
    messages in a ``RequestMessages`` instead of an ``asyncio.Queue``."""
    assert "application_instance" not in server.connections[protocol]
    messages = RequestMessages()
    scope.setdefault("asgi", {"version": "3.0"})
    instance = server.application(
        scope=scope, receive=messages.get, send=partial(server.handle_reply, protocol)
    )
    if protocol not in server.connections:
        return None
    server.connections[protocol]["application_instance"] = asyncio.ensure_future(instance)
    return messages


def install() -> bool:
    _install_lean_process()
    _install_joined_end()
    module = sys.modules.get("daphne.server")
    server_class = getattr(module, "Server", None)
    if server_class is None or getattr(server_class, "_ccsite_forgets", False):
        return False
    if not all(
        callable(getattr(server_class, name, None)) for name in ("create_application", "application_checker")
    ):
        return False
    create = server_class.create_application

    def create_application(self: Any, protocol: Any, scope: Any) -> Any:
        if scope.get("type") == "http":
            queue = _create_http_application(self, protocol, scope)
        else:  # WebSocket: Daphne's own queue
            queue = create(self, protocol, scope)
        instance = self.connections.get(protocol, {}).get("application_instance")
        if instance is not None:
            instance.add_done_callback(lambda done: _forget_when_done(self, protocol, done))
        return queue

    server_class.create_application = create_application
    server_class._ccsite_forgets = True
    return True
