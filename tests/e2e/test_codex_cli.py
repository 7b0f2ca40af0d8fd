"""Codex CLI (the real binary) through a live gateway to the simulator, on /v1/responses.

Opt-in: `make e2e` installs the pinned Codex CLI into a cache folder outside the repo and sets
CCSITE_CODEX to its binary; without it these tests are skipped. Codex reads its provider from
``$CODEX_HOME/config.toml``: a temporary one per test, with ``wire_api = "responses"``.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from proxy.upstream.simulator.scenarios import expected_reasoning, expected_text

CODEX = os.environ.get("CCSITE_CODEX", "")
pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(not CODEX, reason="set CCSITE_CODEX (make e2e) to run the Codex CLI"),
]
MODEL = "gpt-5.4"


def codex_home(live, root: Path) -> Path:
    home = root / "codex-home"
    home.mkdir()
    (home / "config.toml").write_text(
        f'model = "{MODEL}"\n'
        'model_provider = "ccsite"\n'
        "[model_providers.ccsite]\n"
        'name = "ccsite"\n'
        f'base_url = "{live.url}/v1"\n'
        'env_key = "CCSITE_TEST_KEY"\n'
        'wire_api = "responses"\n'
        # A broken stream must fail the test, not be retried into a pass.
        "request_max_retries = 0\n"
        "stream_max_retries = 0\n"
    )
    return home


def run_codex(live, root: Path, prompt: str, *extra: str) -> subprocess.CompletedProcess[str]:
    work = root / "project"
    work.mkdir(exist_ok=True)
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(root),
        "CODEX_HOME": str(codex_home(live, root)),
        "CCSITE_TEST_KEY": live.key,
    }
    with Path(os.devnull).open() as stdin:  # without it, codex exec waits on stdin
        return subprocess.run(
            [CODEX, "exec", "--skip-git-repo-check", "--ephemeral", "--json", *extra, prompt],
            env=env,
            cwd=work,
            stdin=stdin,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )


def events(result: subprocess.CompletedProcess[str]) -> list[dict]:
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


def agent_texts(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [
        event["item"]["text"]
        for event in events(result)
        if event.get("type") == "item.completed" and event["item"].get("type") == "agent_message"
    ]


def test_codex_answers_through_the_gateway(live, tmp_path):
    result = run_codex(live, tmp_path, "[sim:text deltas=6] say hi")
    assert result.returncode == 0, result.stdout + result.stderr
    assert agent_texts(result) == [expected_text(deltas=6)]
    assert "Reconnecting" not in result.stderr
    generate = live.sim_requests()
    assert generate and all(r["status"] == 200 for r in generate)
    assert generate[-1]["body"]["params"]["model"] == MODEL


def test_codex_shows_the_models_reasoning(live, tmp_path):
    result = run_codex(live, tmp_path, "[sim:reasoning] think, then answer")
    assert result.returncode == 0, result.stdout + result.stderr
    assert agent_texts(result) == [expected_text()]
    shown = [
        event["item"]["text"]
        for event in events(result)
        if event.get("type") == "item.completed" and event["item"].get("type") == "reasoning"
    ]
    assert shown and expected_reasoning() in "".join(shown)


def test_codex_runs_a_shell_tool_loop_through_the_gateway(live, tmp_path):
    # The simulator calls Codex's shell tool with a command; Codex runs it and sends the output
    # back as a function_call_output, and the simulator answers that turn with its text.
    result = run_codex(
        live,
        tmp_path,
        "[sim:tool-call tool=exec_command] run it",
        "--dangerously-bypass-approvals-and-sandbox",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert agent_texts(result)[-1] == expected_text()
    turns = [r["body"]["params"]["messages"] for r in live.sim_requests()]
    assert len(turns) == 2
    results = [p for m in turns[1] for p in m["content"] if p["type"] == "tool-result"]
    assert results and results[0]["toolName"] == "exec_command"
    assert results[0]["toolCallId"] == "call_sim_0_0"
    output = results[0]["output"]["value"]
    assert "hello-from-tool" in output and "exited with code 0" in output, output


def test_codex_reports_a_stream_that_fails_after_the_200(live, tmp_path):
    # response.failed ends the turn with an error: Codex says so and exits non-zero, no hang.
    result = run_codex(live, tmp_path, "[sim:error-fatal after=2] go")
    assert result.returncode != 0
    failures = [e for e in events(result) if e.get("type") in ("turn.failed", "error")]
    assert failures and "Command Code" in failures[-1].get("message", json.dumps(failures[-1]))
    assert len(live.sim_requests()) == 1, "stream_max_retries = 0: no retry"
