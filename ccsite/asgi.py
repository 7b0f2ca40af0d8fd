"""ASGI entry point: a channels router (HTTP now; websocket routes come with the live log view)."""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ccsite.settings")

# Django must be set up before anything imports models; keep this above the other imports.
from ccsite.handler import get_gateway_asgi_application  # noqa: E402

django_asgi_app = get_gateway_asgi_application()

from channels.routing import ProtocolTypeRouter  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402

from ccsite import runtime, shutdown, twisted_tuning  # noqa: E402
from ccsite.edge import answer_head_probes  # noqa: E402
from ccsite.lifespan import lifespan_app  # noqa: E402

twisted_tuning.install()
shutdown.install_under_daphne(settings.CCSITE_SHUTDOWN_GRACE_SECONDS)
runtime.tune_gc()  # last: freeze everything imported and built above

application = ProtocolTypeRouter(
    {
        # Admin assets are served here, before Django's middleware, so no sync static
        # middleware sits on the API path.
        "http": shutdown.count_in_flight(answer_head_probes(ASGIStaticFilesHandler(django_asgi_app))),
        "lifespan": lifespan_app,
    }
)
