"""Admin of the gateway's own settings: the routing policy (one row, no add or delete)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

from proxy import routing_settings
from proxy.models import RoutingSettings


@admin.register(RoutingSettings)
class RoutingSettingsAdmin(admin.ModelAdmin):
    fields = ["policy", "in_force", "updated_at"]
    readonly_fields = ["in_force", "updated_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        # A singleton: the list is its change page.
        return redirect("admin:proxy_routingsettings_change", RoutingSettings.load().pk)

    def save_model(self, request: HttpRequest, obj: RoutingSettings, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        routing_settings.changed()

    @admin.display(description="in force now")
    def in_force(self, obj: RoutingSettings) -> str:
        server = settings.CCSITE_ROUTING_POLICY
        source = "set here" if routing_settings.override() else "server setting"
        return f"{routing_settings.policy()} ({source}; CCSITE_ROUTING_POLICY={server})"
