"""LiteLLM's ``responses()`` (a Responses API client) through a live gateway to the simulator.

Opt-in: `make e2e` installs the pinned litellm into a separate folder (its dependencies must not
mix with the venv) and sets CCSITE_LITELLM to that folder; without it these tests are skipped.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from proxy.upstream.simulator.scenarios import expected_text

LITELLM_DIR = os.environ.get("CCSITE_LITELLM", "")
pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(not LITELLM_DIR, reason="set CCSITE_LITELLM (make e2e) to run LiteLLM"),
]

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import litellm
    url, key = sys.argv[1], sys.argv[2]
    where = {"model": "openai/deepseek/deepseek-v4-flash", "api_base": url + "/v1", "api_key": key}

    def get(obj, name):
        return obj.get(name) if isinstance(obj, dict) else getattr(obj, name)

    plain = litellm.responses(input="hi", **where)
    message = [item for item in plain.output if get(item, "type") == "message"][0]
    stream = litellm.responses(input="[sim:text deltas=7]", stream=True, **where)
    kinds, deltas = [], []
    for event in stream:
        kind = get(event, "type")
        kinds.append(str(getattr(kind, "value", kind)))  # litellm types it as an enum
        if kinds[-1] == "response.output_text.delta":
            deltas.append(get(event, "delta"))
    tool = litellm.responses(
        input="[sim:tool-call]",
        tools=[{"type": "function", "name": "read_file", "parameters": {"type": "object", "properties": {}}}],
        **where,
    )
    call = [item for item in tool.output if get(item, "type") == "function_call"][0]
    print(json.dumps({
        "plain": get(get(message, "content")[0], "text"),
        "input_tokens": get(plain.usage, "input_tokens"),
        "streamed": "".join(deltas),
        "kinds": [str(kind) for kind in kinds],
        "call": [get(call, "name"), get(call, "call_id"), get(call, "arguments")],
    }))
    """
)


def test_litellm_responses_text_stream_and_tool_call(live):
    env = {
        **os.environ,
        "PYTHONPATH": LITELLM_DIR,
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # no network fetch of the price list
        "LITELLM_TELEMETRY": "False",
    }
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, live.url, live.key],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer["plain"] == expected_text() and answer["input_tokens"] > 0
    assert answer["streamed"] == expected_text(deltas=7), answer["kinds"]
    assert answer["kinds"][0] == "response.created" and answer["kinds"][-1] == "response.completed"
    name, call_id, arguments = answer["call"]
    assert (name, call_id) == ("read_file", "call_sim_0_0") and isinstance(json.loads(arguments), dict)
    paths = [record["body"]["params"]["messages"][-1]["content"][0]["text"] for record in live.sim_requests()]
    assert paths == ["hi", "[sim:text deltas=7]", "[sim:tool-call]"]
