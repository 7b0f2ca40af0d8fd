"""The real `llm` CLI (an OpenAI-compatible client) through a live gateway to the simulator."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from proxy.upstream.sim_scenarios import expected_text

pytestmark = [pytest.mark.live]

LLM = Path(sys.executable).with_name("llm")


def run_llm(live, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    (home / "extra-openai-models.yaml").write_text(
        "- model_id: ccsite\n"
        "  model_name: deepseek/deepseek-v4-flash\n"
        f"  api_base: {live.url}/v1\n"
        "  api_key_name: ccsite\n"
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
