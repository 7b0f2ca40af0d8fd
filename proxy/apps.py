from __future__ import annotations

from django.apps import AppConfig


class ProxyConfig(AppConfig):
    name = "proxy"
    verbose_name = "API gateway"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from proxy import billing, limits, metrics, routing, routing_settings, token_calibration

        token_calibration.install()
        limits.install()
        routing.install()
        routing_settings.install()
        billing.install()
        metrics.install()
