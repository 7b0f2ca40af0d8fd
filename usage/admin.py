"""Admin: the request log (read-only), the usage report, its CSV, and the live request view."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ChangeList
from django.http import HttpRequest
from django.urls import path, reverse
from django.utils.html import format_html

from usage import views
from usage.models import RequestBody, RequestLog

# The filters whose value reaches the database as an id (a 64-bit integer).
ID_FILTERS = ("user", "user__id__exact", "client_key", "client_key__id__exact")


def _past_64_bits(value: str) -> bool:
    try:
        number = int(value)
    except ValueError:
        return False  # not a number at all: Django refuses it by itself
    return not -(2**63) <= number < 2**63


@admin.register(RequestLog)
class RequestLogAdmin(admin.ModelAdmin):
    list_display = [
        "created_at",
        "request_id",
        "user",
        "client_key",
        "surface",
        "model",
        "outcome",
        "http_status",
        "input_tokens",
        "output_tokens",
        "tokens_estimated",
        "first_token_ms",
        "duration_ms",
        "cost_usd",
    ]
    list_filter = ["outcome", "surface", "model", "stream", "tokens_estimated", "user", "created_at"]
    search_fields = ["=request_id"]
    date_hierarchy = "created_at"
    list_select_related = ["user", "client_key"]
    show_full_result_count = False  # a COUNT(*) over millions of rows on every page is wasted
    readonly_fields = ["bodies"]
    change_list_template = "admin/usage/requestlog/change_list.html"

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest | None = None) -> bool:
        # Links from a user's and a key's admin page filter on them.
        return lookup in ("user__id__exact", "client_key__id__exact") or super().lookup_allowed(
            lookup, value, request
        )

    def get_changelist_instance(self, request: HttpRequest) -> ChangeList:
        # An id no integer column can hold is a filter Django cannot apply (its "?e=1" page),
        # not a server error from the driver (SQLite cannot even bind it).
        if any(_past_64_bits(request.GET.get(name, "0")) for name in ID_FILTERS):
            raise IncorrectLookupParameters("an id filter is out of range")
        return super().get_changelist_instance(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [field.name for field in RequestLog._meta.fields if field.name != "id"] + ["bodies"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return self.get_fields(request, obj)

    @admin.display(description="Bodies (opt-in, redacted)")
    def bodies(self, obj: RequestLog) -> str:
        body = RequestBody.objects.filter(request_id=obj.request_id).first()
        if body is None:
            return "not kept (CCSITE_REQUEST_LOG_BODIES is off)"
        return format_html(
            "<p>Request</p><pre>{}</pre><p>Response</p><pre>{}</pre>", body.request_body, body.response_body
        )

    def get_urls(self) -> list[Any]:
        wrap = self.admin_site.admin_view
        site = self.admin_site
        return [
            path("report/", wrap(lambda r: views.report_view(site, r)), name="usage_report"),
            path("report.csv", wrap(lambda r: views.report_csv_view(site, r)), name="usage_report_csv"),
            path("live/", wrap(lambda r: views.live_view(site, r)), name="usage_live"),
            *super().get_urls(),
        ]

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        extra = {"report_url": reverse("admin:usage_report"), "live_url": reverse("admin:usage_live")}
        return super().changelist_view(request, {**(extra_context or {}), **extra})
