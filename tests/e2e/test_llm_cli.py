"""The real `llm` CLI (an OpenAI-compatible client) through a live gateway to the simulator."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from proxy.upstream.simulator.scenarios import expected_text

pytestmark = [pytest.mark.live]

LLM = Path(sys.executable).with_name("llm")


def run_llm(live, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    (home / "extra-openai-models.yaml").write_text(
        "- model_id: ccsite\n"
        "  model_name: deepseek/deepseek-v4-flash\n"
        f"  api_base: {live.url}/v1\n"
        "  api_key_name: ccsite\n"
        "  supports_tools: true\n"
    )
    env = {**os.environ, "LLM_USER_PATH": str(home)}
    return subprocess.run(
        [str(LLM), "-m", "ccsite", "--key", live.key, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.skipif(not LLM.exists(), reason="the llm CLI is installed by requirements-dev.txt")
@pytest.mark.parametrize("mode", [[], ["--no-stream"]], ids=["stream", "no-stream"])
def test_llm_prompts_through_the_gateway(live, tmp_path, mode):
    result = run_llm(live, tmp_path, *mode, "[sim:text deltas=12] hello")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected_text(deltas=12)
    sent = live.sim_requests()[-1]["body"]["params"]["messages"][-1]["content"][0]["text"]
    assert sent == "[sim:text deltas=12] hello"


@pytest.mark.skipif(not LLM.exists(), reason="the llm CLI is installed by requirements-dev.txt")
def test_llm_runs_a_tool_loop_through_the_gateway(live, tmp_path):
    # llm declares its built-in llm_version tool; the simulator calls it, llm runs it and sends
    # the result back, and the simulator answers that turn with its text.
    result = run_llm(
        live, tmp_path, "-T", "llm_version", "--td", "[sim:tool-call tool=llm_version args=0] version?"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith(expected_text())
    turns = [r["body"]["params"]["messages"] for r in live.sim_requests()]
    assert len(turns) == 2
    results = [p for m in turns[1] for p in m["content"] if p["type"] == "tool-result"]
    assert results and results[0]["toolName"] == "llm_version" and results[0]["toolCallId"] == "call_sim_0_0"


def run_llm_responses(live, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`llm openai endpoint --responses`: llm's Responses API client (POST /v1/responses)."""
    env = {**os.environ, "LLM_USER_PATH": str(home)}
    return subprocess.run(
        [
            str(LLM),
            "openai",
            "endpoint",
            f"{live.url}/v1",
            "-m",
            "deepseek/deepseek-v4-flash",
            "--key",
            live.key,
            "--responses",
            *args,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.skipif(not LLM.exists(), reason="the llm CLI is installed by requirements-dev.txt")
@pytest.mark.parametrize("mode", [[], ["--no-stream"]], ids=["stream", "no-stream"])
def test_llm_responses_mode_prompts_through_the_gateway(live, tmp_path, mode):
    result = run_llm_responses(live, tmp_path, *mode, "[sim:text deltas=12] hello")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected_text(deltas=12)
    assert live.sim_requests()[-1]["body"]["params"]["messages"][-1]["content"][0]["text"].endswith("hello")


@pytest.mark.skipif(not LLM.exists(), reason="the llm CLI is installed by requirements-dev.txt")
def test_llm_responses_mode_runs_a_tool_loop_through_the_gateway(live, tmp_path):
    result = run_llm_responses(
        live, tmp_path, "-T", "llm_version", "--td", "[sim:tool-call tool=llm_version args=0] version?"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith(expected_text())
    turns = [r["body"]["params"]["messages"] for r in live.sim_requests()]
    assert len(turns) == 2
    results = [p for m in turns[1] for p in m["content"] if p["type"] == "tool-result"]
    assert results and results[0]["toolName"] == "llm_version" and results[0]["toolCallId"] == "call_sim_0_0"
