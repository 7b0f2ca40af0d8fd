"""The usage report, its CSV and the usage command given dates at the calendar's edges: a clear
refusal, never a server error."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

pytestmark = [pytest.mark.django_db]


@pytest.mark.parametrize(
    "query", ["until=9999-12-31", "since=9999-12-31", "since=0001-01-01&until=0001-01-01"]
)
def test_the_report_page_refuses_dates_past_the_calendar_with_a_message(admin_client, query):
    response = admin_client.get(f"{reverse('admin:usage_report')}?{query}")
    assert response.status_code == 400  # as every bad filter: never a report of another range
    assert not response.context["form"].is_valid()
    assert "Enter a date from 1970-01-01 to 9999-12-30." in response.content.decode()


def test_the_csv_of_such_a_query_is_refused_with_the_same_message(admin_client):
    csv = admin_client.get(f"{reverse('admin:usage_report_csv')}?until=9999-12-31")
    assert csv.status_code == 400
    assert "Enter a date from 1970-01-01 to 9999-12-30." in csv.content.decode()


def test_the_usage_command_refuses_dates_past_the_calendar():
    with pytest.raises(CommandError, match="from 1970-01-01 to 9999-12-30"):
        call_command("usage", "--until", "9999-12-31")


@pytest.mark.parametrize(
    "query",
    [
        "user=99999999999999999999999",
        "client_key__id__exact=-99999999999999999999999",
        "user__id__exact=" + "9" * 25,
    ],
)
def test_the_request_log_list_refuses_an_id_filter_past_a_64_bit_integer(admin_client, query):
    """Django's page for a filter it cannot apply (a redirect to ``?e=1``), not a 500 from the
    database driver (SQLite cannot bind such an integer)."""
    url = reverse("admin:usage_requestlog_changelist")
    response = admin_client.get(f"{url}?{query}")
    assert response.status_code == 302 and response["Location"].endswith("?e=1")
