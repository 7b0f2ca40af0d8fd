"""Admin for the catalog: toggles in the list, aliases inline, prices, and the live refresh.

Every save goes through ``services.changed()`` so the change reaches every gateway process.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import Q, QuerySet
from django.http import HttpRequest

from accounts.models import UpstreamCredential
from catalog import services
from catalog.models import Model, ModelAlias, RefreshRecord
from catalog.refresh import refresh


class VendorFilter(admin.SimpleListFilter):
    title = "vendor"
    parameter_name = "vendor"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        vendors = {row.vendor for row in Model.objects.only("upstream_id")}
        return [(vendor, vendor) for vendor in sorted(vendors)]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Model]) -> QuerySet[Model]:
        vendor = self.value()
        if not vendor:
            return queryset
        if vendor in ("anthropic", "openai"):
            prefix_filter = Q(upstream_id__startswith="claude")
            wanted = prefix_filter if vendor == "anthropic" else ~prefix_filter
            return queryset.exclude(upstream_id__contains="/").filter(wanted)
        return queryset.filter(upstream_id__startswith=f"{vendor}/")


class ModelAliasInline(admin.TabularInline):
    model = ModelAlias
    extra = 1


@admin.register(Model)
class ModelAdmin(admin.ModelAdmin):
    list_display = [
        "upstream_id",
        "enabled",
        "source",
        "context_window",
        "accepts_images",
        "price_input",
        "price_output",
        "missing_upstream",
        "last_seen_upstream",
    ]
    list_editable = ["enabled"]
    list_filter = ["enabled", "source", VendorFilter, "accepts_images", "missing_upstream"]
    search_fields = ["upstream_id", "display_name", "aliases__name"]
    readonly_fields = ["first_seen_upstream", "last_seen_upstream", "missing_upstream", "serving_credentials"]
    inlines = [ModelAliasInline]
    actions = ["refresh_from_upstream", "enable_models", "disable_models"]
    fieldsets = [
        (None, {"fields": ["upstream_id", "display_name", "enabled", "source"]}),
        ("Capabilities", {"fields": ["context_window", "accepts_images", "reasoning_levels"]}),
        (
            "Prices per million tokens (empty = unpriced)",
            {"fields": ["price_input", "price_cache_read", "price_cache_write", "price_output"]},
        ),
        (
            "Upstream",
            {
                "fields": [
                    "first_seen_upstream",
                    "last_seen_upstream",
                    "missing_upstream",
                    "serving_credentials",
                ]
            },
        ),
    ]

    @admin.display(description="Upstream credentials that may serve it")
    def serving_credentials(self, obj: Model) -> str:
        if obj.pk is None:
            return "-"
        labels = [
            f"{row.label}{'' if row.enabled else ' (disabled)'}"
            for row in UpstreamCredential.objects.order_by("label")
            if not row.allowed_models or obj.upstream_id in row.allowed_models
        ]
        return ", ".join(labels) or "none: no upstream credential allows this model"

    def save_model(self, request: HttpRequest, obj: Model, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        services.changed()

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        services.changed()  # aliases edited inline

    def delete_model(self, request: HttpRequest, obj: Model) -> None:
        super().delete_model(request, obj)
        services.changed()

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Model]) -> None:
        super().delete_queryset(request, queryset)
        services.changed()

    @admin.action(description="Refresh the catalog from the upstream's model list")
    def refresh_from_upstream(self, request: HttpRequest, queryset: QuerySet[Model]) -> None:
        record = refresh("admin")
        if not record.ok:
            self.message_user(
                request, f"Refresh failed; the catalog is unchanged: {record.error}", messages.ERROR
            )
            return
        summary = (
            f"Refreshed: {record.listed} listed upstream; added {', '.join(record.added) or 'none'}; "
            f"vanished {', '.join(record.vanished) or 'none'}; back {', '.join(record.returned) or 'none'}."
        )
        self.message_user(request, summary, messages.SUCCESS)

    @admin.action(description="Enable selected models")
    def enable_models(self, request: HttpRequest, queryset: QuerySet[Model]) -> None:
        rows = services.set_enabled(queryset.values_list("upstream_id", flat=True), True)
        self.message_user(request, f"Enabled {len(rows)} model(s).", messages.SUCCESS)

    @admin.action(description="Disable selected models")
    def disable_models(self, request: HttpRequest, queryset: QuerySet[Model]) -> None:
        rows = services.set_enabled(queryset.values_list("upstream_id", flat=True), False)
        self.message_user(request, f"Disabled {len(rows)} model(s).", messages.SUCCESS)


@admin.register(ModelAlias)
class ModelAliasAdmin(admin.ModelAdmin):
    list_display = ["name", "model"]
    search_fields = ["name", "model__upstream_id"]
    autocomplete_fields = ["model"]

    def save_model(self, request: HttpRequest, obj: ModelAlias, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        services.changed()

    def delete_model(self, request: HttpRequest, obj: ModelAlias) -> None:
        super().delete_model(request, obj)
        services.changed()

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[ModelAlias]) -> None:
        super().delete_queryset(request, queryset)
        services.changed()


@admin.register(RefreshRecord)
class RefreshRecordAdmin(admin.ModelAdmin):
    list_display = ["started_at", "trigger", "ok", "listed", "error"]
    list_filter = ["ok", "trigger"]
    readonly_fields = ["started_at", "trigger", "ok", "error", "added", "vanished", "returned", "listed"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
