"""Claude Code (the real binary) through a live gateway to the simulator.

Opt-in: `make e2e` installs the pinned Claude Code into a cache folder outside the repo and
sets CCSITE_CLAUDE_CODE to its binary; without it these tests are skipped.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from proxy.upstream.simulator.scenarios import expected_text

CLAUDE = os.environ.get("CCSITE_CLAUDE_CODE", "")
pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(not CLAUDE, reason="set CCSITE_CLAUDE_CODE (make e2e) to run Claude Code"),
]


def run_claude(live, home: Path, prompt: str, *extra: str) -> dict:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "ANTHROPIC_BASE_URL": live.url,
        "ANTHROPIC_API_KEY": live.key,
        # A broken stream must fail the test, not be retried silently without streaming.
        "CLAUDE_CODE_DISABLE_NONSTREAMING_FALLBACK": "1",
        "CLAUDE_CODE_MAX_RETRIES": "0",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    }
    result = subprocess.run(
        [CLAUDE, "-p", prompt, "--output-format", "json", "--model", "claude-sonnet-4-6", *extra],
        env=env,
        cwd=home,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def test_claude_code_answers_through_the_gateway(live, tmp_path):
    answer = run_claude(live, tmp_path, "[sim:text deltas=6] say hi")
    assert answer["is_error"] is False
    assert answer["result"] == expected_text(deltas=6)
    generate = [r for r in live.sim_requests() if r["body"]["params"]["model"] == "claude-sonnet-4-6"]
    assert generate and all(r["status"] == 200 for r in generate)


def test_claude_code_thinks_through_the_gateway(live, tmp_path):
    answer = run_claude(live, tmp_path, "[sim:reasoning deltas=5] think, then answer")
    assert answer["is_error"] is False
    assert answer["result"] == expected_text(deltas=5)


@pytest.mark.parametrize("tool", ["Bash", "Read"])
def test_claude_code_runs_a_tool_loop_through_the_gateway(live, tmp_path, tool):
    # The simulator calls the tool (with arguments Claude Code rejects or runs: either way a
    # tool_result goes back), then answers the turn that carries the result with its text.
    answer = run_claude(live, tmp_path, f"[sim:tool-call tool={tool}] go", "--allowedTools", tool)
    assert answer["is_error"] is False
    assert answer["result"] == expected_text()
    last = [r["body"]["params"]["messages"] for r in live.sim_requests()][-1]
    results = [p for m in last for p in m["content"] if p["type"] == "tool-result"]
    assert results and results[0]["toolCallId"] == "call_sim_0_0" and results[0]["toolName"] == tool
