"""`manage.py ccbench --smoke`: the whole benchmark pipeline (throwaway database, simulator,
gateway, load generator, exact answer checks, report) on a handful of requests."""

from __future__ import annotations

import os
import re
import shutil

import pytest

from proxy.bench.runner import peer_unavailable
from tests.live import run_ccbench

ROW = re.compile(
    r"^(direct \(simulator\)|gateway \(features on\)|gateway \(logging off\))\s+(\d+)\s+(\d+)\s", re.MULTILINE
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


# The peer proxy to measure (a folder with proxy.mjs, e.g. a checkout of a Node Command Code proxy
# that forwards the caller's user_... key to CC_API_BASE); the test needs it and Node.
PEER_DIR = os.environ.get("CCSITE_BENCH_PEER", "")
PEER_ROW = re.compile(r"^(peer|gateway \(features (?:on|off)\)) #\d\s+(\d+)\s+(\d+)\s", re.MULTILINE)


@pytest.mark.timeout(900)  # three targets, two rounds, on a shared 2-core machine
@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")
@pytest.mark.skipif(not PEER_DIR, reason="CCSITE_BENCH_PEER names no peer folder")
def test_smoke_run_measures_the_peer_interleaved_and_checked(tmp_path):
    args = ("--only", "b,d,e,r", "--peer", PEER_DIR, "--repeat", "2", "--features-off")
    result = run_ccbench(
        tmp_path,
        "--smoke",
        *args,
        "--no-auth-compare",
        "--no-logging-compare",
        "--no-limits-compare",
        timeout=400,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    table = result.stdout
    rows = PEER_ROW.findall(table)
    # b, d and e: three targets twice each; the peer has no /v1/responses, so r only has ours.
    assert sum(1 for name, _, _ in rows if name == "peer") == 6, table
    assert sum(1 for name, _, _ in rows if name.startswith("gateway")) == 16, table
    # The load generator checked every answer of every target exactly.
    assert all(int(errors) == 0 and int(ok) > 0 for _, ok, errors in rows), table
    assert table.count("  peer / direct") == 6
    summary = table[table.index("gateway (features on) / peer, median of 2") :]
    for column in ("b: CPU per relayed event", "e: CPU per relayed event", "d: small non-streaming"):
        line = next(line for line in summary.splitlines() if line.startswith(column))
        assert re.search(r" \d+\.\d\dx  \d+\.\d\d, \d+\.\d\d  (lead|BEHIND)$", line), line


def test_a_missing_node_skips_the_peer_with_a_clear_line(tmp_path, monkeypatch):
    peer = tmp_path / "peer"
    peer.mkdir()
    (peer / "proxy.mjs").write_text("")
    path = os.environ["PATH"]
    monkeypatch.setenv("PATH", str(tmp_path))  # no node on it
    assert peer_unavailable(peer) == "node is not installed: skipping the peer (install Node.js 18 or newer)"
    monkeypatch.setenv("PATH", path)
    if shutil.which("node"):
        assert peer_unavailable(peer) is None
    assert peer_unavailable(tmp_path / "elsewhere") in (
        f"no proxy.mjs in {tmp_path / 'elsewhere'}: skipping the peer",
        "node is not installed: skipping the peer (install Node.js 18 or newer)",
    )


def _figures(label: str, ttft_p50_ms: float) -> object:
    from proxy.bench.stats import RunFigures

    return RunFigures(label, 10, 0, {}, 1.0, 500, 1.0, 2.0, ttft_p50_ms, 2.0, 3.0, 4.0)


def test_the_comparison_has_a_table_for_the_gateway_with_its_features_off():
    from proxy.bench.compare import compare, render_comparison
    from proxy.bench.runner import Repetition, ScenarioResult
    from proxy.bench.scenarios import standard_scenarios

    scenario = next(s for s in standard_scenarios(1.0, (500,)) if s.name == "a")
    reps = [
        Repetition(_figures("direct", 0.2), _figures("on", 0.8), _figures("peer", 1.2), _figures("off", 0.5))
        for _ in range(3)
    ]
    results = [ScenarioResult(scenario, reps[0].direct, reps[0].gateway, repetitions=reps)]
    assert [round(row.ratio, 6) for row in compare(results)] == [0.6]  # (0.8 - 0.2) / (1.2 - 0.2)
    assert [round(row.ratio, 6) for row in compare(results, "features_off")] == [0.3]
    text = "\n".join(render_comparison(results))
    assert "gateway (features on) / peer" in text and "gateway (features off) / peer" in text
