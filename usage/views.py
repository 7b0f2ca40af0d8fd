"""Admin pages of the usage app: the report (with its CSV export) and the live request view.

Registered through the admin site's URLs (usage/admin.py), staff only, templates extending
``admin/base_site.html``. Query code lives in usage/selectors.py.
"""

from __future__ import annotations

import csv
from typing import Any

from django.contrib.admin import AdminSite
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from usage.forms import ReportForm
from usage.selectors import Report, usage_report


def build_report(request: HttpRequest) -> tuple[ReportForm, Report]:
    form = ReportForm(request.GET or None)
    report_filter, bucket = form.report_filter()
    return form, usage_report(report_filter, bucket=bucket)


def report_view(site: AdminSite, request: HttpRequest) -> HttpResponse:
    form, report = build_report(request)
    context: dict[str, Any] = {
        **site.each_context(request),
        "title": "Usage report",
        "form": form,
        "report": report,
        "chart_data": report.chart_data(),
        "query": request.GET.urlencode(),
    }
    return TemplateResponse(request, "admin/usage/report.html", context)


def report_csv_view(site: AdminSite, request: HttpRequest) -> HttpResponse:
    """Exactly the page's tables, one after the other, each under a row with its title."""
    _, report = build_report(request)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="usage-report.csv"'
    writer = csv.writer(response)
    for index, table in enumerate(report.tables):
        if index:
            writer.writerow([])
        writer.writerow([f"# {table.title}"])
        writer.writerow(table.headers)
        writer.writerows(table.rows)
    return response


def live_view(site: AdminSite, request: HttpRequest) -> HttpResponse:
    context = {**site.each_context(request), "title": "Live requests"}
    return TemplateResponse(request, "admin/usage/live.html", context)
