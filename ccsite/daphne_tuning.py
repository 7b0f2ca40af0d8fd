"""Daphne forgets a finished HTTP request when it finishes, not on its next sweep.

Daphne keeps every request in ``Server.connections`` until ``application_checker``, a sweep
that runs once a second, finds its application done and its response sent; a second sweep,
``timeout_checker``, visits every entry every two seconds. At a few hundred requests a second
both walk hundreds of finished requests per pass: in scenario d of ``make bench`` the sweep
alone was 1.3% of the gateway's CPU. Here each application, when it ends without an error,
removes its entry itself if the response has already gone (``protocol_disconnected`` was
called). Applications that fail or are cancelled stay for the sweep, which logs and reports
them exactly as before.

Installed only when Daphne's server module is loaded (the process runs under Daphne) and
still has what this relies on.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any


def _forget_when_done(server: Any, protocol: Any, instance: asyncio.Future[Any]) -> None:
    details = server.connections.get(protocol)
    if details is None or details.get("application_instance") is not instance:
        return
    if instance.cancelled() or instance.exception() is not None:
        return  # the sweep logs it and answers the client, as Daphne does
    if details.get("disconnected"):
        del server.connections[protocol]


def install() -> bool:
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
        queue = create(self, protocol, scope)
        instance = self.connections.get(protocol, {}).get("application_instance")
        if instance is not None:
            instance.add_done_callback(lambda done: _forget_when_done(self, protocol, done))
        return queue

    server_class.create_application = create_application
    server_class._ccsite_forgets = True
    return True
