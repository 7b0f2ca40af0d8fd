"""URL map: the /v1 API (django-ninja), /health, /metrics, the admin, and the self-service pages at /."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path, re_path

from proxy.api import api_urls
from proxy.views.fallback import unknown_api_route
from proxy.views.health import health
from proxy.views.metrics import metrics_view

urlpatterns = [
    path("health", health, name="health"),
    path("metrics", metrics_view, name="metrics"),
    path("v1/", api_urls()),
    re_path(r"^v1/", unknown_api_route),
    path("admin/", admin.site.urls),
    path("", include("portal.urls")),
]
