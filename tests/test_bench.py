"""`manage.py ccbench --smoke`: the whole benchmark pipeline (throwaway database, simulator,
gateway, load generator, exact answer checks, report) on a handful of requests."""

from __future__ import annotations

import re

import pytest

from tests.live import run_ccbench

ROW = re.compile(
    r"^(direct \(simulator\)|gateway \(auth on\)|gateway \(logging off\))\s+(\d+)\s+(\d+)\s", re.MULTILINE
)

pytestmark = [pytest.mark.live]


def test_smoke_run_reports_every_scenario_without_errors(tmp_path):
    result = run_ccbench(tmp_path, "--smoke", "--only", "a,d,e,r", "--no-auth-compare")
    assert result.returncode == 0, result.stderr[-2000:]
    table = result.stdout
    for name in ("[a] c=1", "[d] c=16", "[e] c=32", "[r] c=32"):
        assert name in table
    rows = ROW.findall(table)
    assert len(rows) == 9  # d is run again with request logging off
    assert "request logging adds" in table
    # Smoke runs send a fixed number of requests per worker: every one must come back exact.
    assert all(int(errors) == 0 and int(ok) > 0 for _, ok, errors in rows), table
    assert table.count("gateway / direct") == 4
    # Scenario d again with a key that has every limit set: nothing refused, the cost reported.
    limited = re.search(r"^gateway \(limits on\)\s+(\d+)\s+(\d+)\s", table, re.MULTILINE)
    assert limited and int(limited.group(1)) > 0 and int(limited.group(2)) == 0, table
    assert "every limit set adds" in table
    assert re.search(r"gateway CPU [\d.]+ s for [\d,]+ events", table)
    assert re.search(r"cross-core round trip \(gateway core <-> load core\): \d+ us p50", table)
    assert re.search(r"TTFT p50 overhead net of the two cross-core round trips: \+-?[\d.]+ ms", table)
