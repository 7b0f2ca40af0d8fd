"""The anthropic SDK 0.x (0.125, still used by many tools) through a live gateway.

Opt-in: `make e2e` installs it into a separate folder (it cannot share the venv with 2.x) and
sets CCSITE_ANTHROPIC_SDK_0X to that folder; without it this test is skipped.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from proxy.upstream.simulator.scenarios import expected_reasoning, expected_text

SDK_DIR = os.environ.get("CCSITE_ANTHROPIC_SDK_0X", "")
pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(not SDK_DIR, reason="set CCSITE_ANTHROPIC_SDK_0X (make e2e) to run anthropic 0.x"),
]

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import anthropic
    url, key = sys.argv[1], sys.argv[2]
    client = anthropic.Anthropic(base_url=url, api_key=key, max_retries=0, _strict_response_validation=True)
    model = "claude-sonnet-4-6"
    plain = client.messages.create(model=model, max_tokens=64, messages=[{"role": "user", "content": "hi"}])
    with client.messages.stream(
        model=model, max_tokens=2048, thinking={"type": "enabled", "budget_tokens": 1024},
        messages=[{"role": "user", "content": "[sim:reasoning]"}],
    ) as stream:
        streamed = stream.get_final_message()
    tool = client.messages.create(
        model=model, max_tokens=64, messages=[{"role": "user", "content": "[sim:tool-call]"}],
        tools=[{"name": "read_file", "description": "Read", "input_schema": {"type": "object"}}],
    )
    counted = client.messages.count_tokens(model=model, messages=[{"role": "user", "content": "hi"}])
    print(json.dumps({
        "version": anthropic.__version__,
        "plain": plain.content[0].text,
        "thinking": streamed.content[0].thinking,
        "text": streamed.content[1].text,
        "stop_reason": tool.stop_reason,
        "tool_id": tool.content[-1].id,
        "input_tokens": counted.input_tokens,
    }))
    """
)


def test_anthropic_sdk_0x_messages_stream_tools_and_count(live):
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, live.url, live.key],
        env={**os.environ, "PYTHONPATH": SDK_DIR},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["version"].startswith("0.")
    assert answer["plain"] == expected_text()
    assert answer["thinking"] == expected_reasoning() and answer["text"] == expected_text()
    assert answer["stop_reason"] == "tool_use" and answer["tool_id"] == "call_sim_0_0"
    assert answer["input_tokens"] > 0
