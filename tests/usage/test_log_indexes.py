"""Looking up the request log by user, key or credential still uses an index, though those
columns have no single-column index of their own (the writer updates fewer B-trees per row)."""

from __future__ import annotations

import pytest
from django.db import connection

from usage.models import RequestLog

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("lookup", "index"),
    [
        ({"user_id": 7}, "usage_log_user_hour"),
        ({"client_key_id": 7}, "usage_log_key_hour"),
        ({"credential_id": 7}, "usage_log_cred_hour"),
    ],
)
def test_a_lookup_by_each_link_is_served_by_its_hour_index(lookup, index):
    if connection.vendor != "sqlite":
        pytest.skip("the query plan is read with SQLite's EXPLAIN QUERY PLAN")
    plan = RequestLog.objects.filter(**lookup).explain()
    assert f"USING INDEX {index}" in plan or f"USING COVERING INDEX {index}" in plan, plan


def test_the_links_have_no_single_column_index_of_their_own():
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, RequestLog._meta.db_table)
    indexed_alone = {tuple(c["columns"]) for c in constraints.values() if c["index"] and not c["primary_key"]}
    for column in ("user_id", "client_key_id", "credential_id"):
        assert (column,) not in indexed_alone
        assert any(columns[0] == column and len(columns) == 2 for columns in indexed_alone)
