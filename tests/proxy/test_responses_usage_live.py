"""/v1/responses when the upstream's usage never arrives: the client and the request log get
the gateway's estimate, marked as such, never a silent zero (as on the chat surface)."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from proxy.translate.token_count import estimate_output_tokens
from usage.models import RequestLog

pytestmark = [pytest.mark.live]

MODEL = "deepseek/deepseek-v4-flash"


def logged(request_id: str, timeout: float = 5.0) -> RequestLog:
    deadline = time.monotonic() + timeout
    while (row := RequestLog.objects.filter(request_id=request_id).first()) is None:
        assert time.monotonic() < deadline, "no request-log row"
        time.sleep(0.05)
    return row


def post(live, **body) -> httpx.Response:
    return httpx.post(
        f"{live.url}/v1/responses",
        headers={"Authorization": f"Bearer {live.key}"},
        json={"model": MODEL, **body},
        timeout=20,
    )


def test_an_answer_the_upstream_ended_without_usage_reports_the_estimate(live):
    # abort: two text deltas, then the upstream stops with no usage (protocol §8).
    response = post(live, input="[sim:abort] hi")
    assert response.status_code == 200
    body = response.json()
    text = body["output"][0]["content"][0]["text"]
    usage = body["usage"]
    assert usage["output_tokens"] == estimate_output_tokens(len(text)) > 0
    assert usage["input_tokens"] > 0
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    row = logged(response.headers["x-request-id"])
    assert row.tokens_estimated
    assert (row.input_tokens, row.output_tokens) == (usage["input_tokens"], usage["output_tokens"])


def test_a_streamed_answer_without_usage_reports_the_estimate_in_its_last_event(live):
    with httpx.stream(
        "POST",
        f"{live.url}/v1/responses",
        headers={"Authorization": f"Bearer {live.key}"},
        json={"model": MODEL, "input": "[sim:abort] hi", "stream": True},
        timeout=20,
    ) as response:
        request_id = response.headers["x-request-id"]
        data = [json.loads(line[6:]) for line in response.iter_lines() if line.startswith("data: ")]
    text = "".join(event["delta"] for event in data if event["type"] == "response.output_text.delta")
    final = data[-1]
    assert final["type"] == "response.completed"
    usage = final["response"]["usage"]
    assert usage["output_tokens"] == estimate_output_tokens(len(text)) > 0
    row = logged(request_id)
    assert row.tokens_estimated
    assert (row.input_tokens, row.output_tokens) == (usage["input_tokens"], usage["output_tokens"])
