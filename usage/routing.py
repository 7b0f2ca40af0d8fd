from __future__ import annotations

from django.urls import path

from usage.consumers import LiveRequestsConsumer

websocket_urlpatterns = [path("ws/usage/live/", LiveRequestsConsumer.as_asgi())]
