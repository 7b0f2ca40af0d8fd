"""The real `llm` CLI (an OpenAI-compatible client) through a live gateway to the simulator."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from proxy.upstream.simulator.scenarios import expected_text

LLM = Path(sys.executable).with_name("llm")
MODEL = "deepseek/deepseek-v4-flash"
TOOL_PROMPT = ("-T", "llm_version", "--td", "[sim:tool-call tool=llm_version args=0] version?")

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(not LLM.exists(), reason="the llm CLI is installed by requirements-dev.txt"),
]


def _llm(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The llm CLI with ``home`` as its configuration folder."""
    return subprocess.run(
        [str(LLM), *args],
        env={**os.environ, "LLM_USER_PATH": str(home)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def run_llm(live, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """llm's OpenAI Chat Completions client, configured as an extra model named ccsite."""
    (home / "extra-openai-models.yaml").write_text(
        "- model_id: ccsite\n"
        f"  model_name: {MODEL}\n"
        f"  api_base: {live.url}/v1\n"
        "  api_key_name: ccsite\n"
        "  supports_tools: true\n"
    )
    return _llm(home, "-m", "ccsite", "--key", live.key, *args)


def run_llm_responses(live, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`llm openai endpoint --responses`: llm's Responses API client (POST /v1/responses)."""
    return _llm(
        home, "openai", "endpoint", f"{live.url}/v1", "-m", MODEL, "--key", live.key, "--responses", *args
    )


def assert_the_tool_loop_ran(live, result: subprocess.CompletedProcess[str]) -> None:
    """llm ran its llm_version tool when the simulator called it, sent the result back, and
    printed the simulator's answer to that second turn."""
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith(expected_text())
    turns = [r["body"]["params"]["messages"] for r in live.sim_requests()]
    assert len(turns) == 2
    results = [p for m in turns[1] for p in m["content"] if p["type"] == "tool-result"]
    assert results and results[0]["toolName"] == "llm_version" and results[0]["toolCallId"] == "call_sim_0_0"


@pytest.mark.parametrize("mode", [[], ["--no-stream"]], ids=["stream", "no-stream"])
def test_llm_prompts_through_the_gateway(live, tmp_path, mode):
    result = run_llm(live, tmp_path, *mode, "[sim:text deltas=12] hello")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected_text(deltas=12)
    sent = live.sim_requests()[-1]["body"]["params"]["messages"][-1]["content"][0]["text"]
    assert sent == "[sim:text deltas=12] hello"


def test_llm_runs_a_tool_loop_through_the_gateway(live, tmp_path):
    # llm declares its built-in llm_version tool; the simulator calls it, llm runs it and sends
    # the result back, and the simulator answers that turn with its text.
    assert_the_tool_loop_ran(live, run_llm(live, tmp_path, *TOOL_PROMPT))


@pytest.mark.parametrize("mode", [[], ["--no-stream"]], ids=["stream", "no-stream"])
def test_llm_responses_mode_prompts_through_the_gateway(live, tmp_path, mode):
    result = run_llm_responses(live, tmp_path, *mode, "[sim:text deltas=12] hello")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected_text(deltas=12)
    assert live.sim_requests()[-1]["body"]["params"]["messages"][-1]["content"][0]["text"].endswith("hello")


def test_llm_responses_mode_runs_a_tool_loop_through_the_gateway(live, tmp_path):
    assert_the_tool_loop_ran(live, run_llm_responses(live, tmp_path, *TOOL_PROMPT))
