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


def build_report(request: HttpRequest) -> tuple[ReportForm, Report | None]:
    """The form and its report; no report when a filter is invalid (the form carries the errors)."""
    form = ReportForm(request.GET or None)
    if form.is_bound and not form.is_valid():
        return form, None
    report_filter, bucket = form.report_filter()
    return form, usage_report(report_filter, bucket=bucket)


def _filter_errors(form: ReportForm) -> list[str]:
    return [f"{name}: {message}" for name, messages in form.errors.items() for message in messages]


def report_view(site: AdminSite, request: HttpRequest) -> HttpResponse:
    """The report page; a bad filter is a 400 with the page, its errors and no numbers."""
    form, report = build_report(request)
    context: dict[str, Any] = {
        **site.each_context(request),
        "title": "Usage report",
        "form": form,
        "report": report,
        "filter_errors": _filter_errors(form),
        "chart_data": report.chart_data() if report is not None else {},
        "query": request.GET.urlencode(),
    }
    return TemplateResponse(
        request, "admin/usage/report.html", context, status=400 if report is None else 200
    )


def report_csv_view(site: AdminSite, request: HttpRequest) -> HttpResponse:
    """Exactly the page's tables, one after the other, each under a row with its title."""
    form, report = build_report(request)
    if report is None:
        text = "\n".join(_filter_errors(form)) + "\n"
        return HttpResponse(text, status=400, content_type="text/plain; charset=utf-8")
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
