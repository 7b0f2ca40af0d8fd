"""ASGI entry point: a channels router (HTTP, the admin's live-view WebSocket, lifespan)."""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ccsite.settings")

# Django must be set up before anything imports models; keep this above the other imports.
from ccsite.handler import get_gateway_asgi_application  # noqa: E402

django_asgi_app = get_gateway_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402

from ccsite import daphne_tuning, runtime, shutdown, twisted_tuning  # noqa: E402
from ccsite.edge import answer_head_probes  # noqa: E402
from ccsite.lifespan import lifespan_app  # noqa: E402
from usage.routing import websocket_urlpatterns  # noqa: E402

twisted_tuning.install(
    twisted_tuning.ServerLimits(
        backlog=settings.CCSITE_LISTEN_BACKLOG,
        header_timeout=settings.CCSITE_HEADER_TIMEOUT,
        body_timeout=settings.CCSITE_BODY_TIMEOUT,
        idle_timeout=settings.CCSITE_IDLE_CONNECTION_TIMEOUT,
    )
)
shutdown.install_under_daphne(settings.CCSITE_SHUTDOWN_GRACE_SECONDS)
daphne_tuning.install()
runtime.tune_gc()  # last: freeze everything imported and built above

application = ProtocolTypeRouter(
    {
        # Admin assets are served here, before Django's middleware, so no sync static
        # middleware sits on the API path.
        "http": shutdown.count_in_flight(
            answer_head_probes(ASGIStaticFilesHandler(django_asgi_app), api=django_asgi_app)
        ),
        # The admin's live request view (staff only; usage/consumers.py).
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
        "lifespan": lifespan_app,
    }
)
