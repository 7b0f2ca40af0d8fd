"""Routing decisions seen from outside, through a live gateway: the request log records the key
used and the failovers, and with every key in a usage window the client gets a 429 with
Retry-After in its own surface's envelope (OpenAI and Anthropic)."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest

from accounts.models import UpstreamCredential
from proxy.upstream.simulator.scenarios import expected_text
from tests.factories import make_client_key, make_credential
from tests.live import daphne_process, free_port

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]
MODEL = "deepseek/deepseek-v4-flash"


@pytest.fixture(scope="module")
def gateway(simulator, django_db_setup, django_db_blocker):
    env = {
        "CC_UPSTREAM_BASE_URL": simulator.url,
        "CCSITE_ROUTING_POLICY": "drain_first",  # a-first is tried first, every time
        "CCSITE_CREDENTIAL_CACHE_SECONDS": "0",
        "CC_RETRY_BASE_DELAY": "0.01",
        "CC_RETRY_MAX_DELAY": "0.05",
        "CCSITE_REQUEST_LOG_BACKGROUND": "1",
        "CCSITE_REQUEST_LOG_FLUSH_SECONDS": "0.05",
    }
    with daphne_process(port=free_port(), env=env) as process:
        yield process


def behave(simulator_url: str, secret: str, scenario: str) -> None:
    body = {"key": secret, "scenario": scenario}
    httpx.post(f"{simulator_url}/_sim/keys", json=body, timeout=10).raise_for_status()


def logged(request_id: str, timeout: float = 5.0):
    from usage.models import RequestLog

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = RequestLog.objects.filter(request_id=request_id).first()
        if row is not None:
            return row
        time.sleep(0.05)
    raise AssertionError(f"no request log for {request_id}")


def test_the_log_records_key_and_failovers_and_all_keys_in_a_window_is_a_429(gateway, simulator):
    secrets = {label: f"user_rlive_{uuid.uuid4().hex[:16]}" for label in ("a", "b")}
    a = make_credential(label="a-first", api_key=secrets["a"])
    b = make_credential(label="b-second", api_key=secrets["b"])
    _, key = make_client_key()
    openai_headers = {"Authorization": f"Bearer {key}"}
    chat = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
    url = f"{gateway.url}/v1/chat/completions"
    behave(simulator.url, secrets["a"], "http-429")  # a usage window on a

    moved = httpx.post(url, json=chat, headers=openai_headers, timeout=30)
    assert moved.status_code == 200 and moved.json()["choices"][0]["message"]["content"] == expected_text()
    row = logged(moved.headers["x-request-id"])
    assert (row.credential_id, row.failovers, row.outcome) == (b.pk, 1, "ok")

    direct = httpx.post(url, json=chat, headers=openai_headers, timeout=30)
    row = logged(direct.headers["x-request-id"])
    assert (row.credential_id, row.failovers) == (b.pk, 0)  # a waits for its window's reset

    behave(simulator.url, secrets["b"], "http-429")
    httpx.post(url, json=chat, headers=openai_headers, timeout=30)  # b's window starts too
    refused = httpx.post(url, json=chat, headers=openai_headers, timeout=30)
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "upstream_credentials_cooling"
    assert "cooling down until" in refused.json()["error"]["message"]
    assert int(refused.headers["Retry-After"]) >= 1
    anthropic = httpx.post(
        f"{gateway.url}/v1/messages",
        json={"model": MODEL, "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]},
        headers={"x-api-key": key, "anthropic-version": "2023-06-01"},
        timeout=30,
    )
    assert anthropic.status_code == 429
    assert anthropic.json()["type"] == "error" and anthropic.json()["error"]["type"] == "rate_limit_error"
    assert int(anthropic.headers["Retry-After"]) >= 1
    row = logged(refused.headers["x-request-id"])
    assert row.credential_id is None and row.http_status == 429
    assert secrets["a"] not in refused.text and secrets["b"] not in refused.text
    # What the admin list reads: a's cooldown, persisted off the request path.
    deadline = time.monotonic() + 5
    while UpstreamCredential.objects.get(pk=a.pk).cooldown_reason != "usage window exhausted":
        assert time.monotonic() < deadline
        time.sleep(0.05)


def _upstream_errors(gateway_url: str) -> dict[tuple[str, str], float]:
    """``ccsite_upstream_errors_total`` of the gateway, by (kind, credential)."""
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"{gateway_url}/metrics", timeout=10).text
    return {
        (sample.labels["kind"], sample.labels["credential"]): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "ccsite_upstream_errors_total"
    }


def test_every_failed_attempt_counts_once_for_its_credential(gateway, simulator):
    """A 500 that was failed over and a 401 that disabled its key each leave a sample although the
    request was served; a request that finally fails counts its failed attempt once."""
    secrets = {label: f"user_rmetric_{uuid.uuid4().hex[:16]}" for label in ("a", "b", "c")}
    make_credential(label="m-a-broken", api_key=secrets["a"])
    make_credential(label="m-b-refused", api_key=secrets["b"])
    make_credential(label="m-c-good", api_key=secrets["c"])
    behave(simulator.url, secrets["a"], "http-500")
    behave(simulator.url, secrets["b"], "http-401")
    _, key = make_client_key()
    headers = {"Authorization": f"Bearer {key}"}
    url = f"{gateway.url}/v1/chat/completions"

    def grew(before: dict, after: dict) -> dict[tuple[str, str], float]:
        return {
            labels: value - before.get(labels, 0)
            for labels, value in after.items()
            if value != before.get(labels, 0)
        }

    before = _upstream_errors(gateway.url)
    served = httpx.post(
        url,
        json={"model": MODEL, "messages": [{"role": "user", "content": "hi"}]},
        headers=headers,
        timeout=30,
    )
    assert served.status_code == 200
    assert logged(served.headers["x-request-id"]).failovers == 2
    after_served = _upstream_errors(gateway.url)
    assert grew(before, after_served) == {("retryable", "m-a-broken"): 1, ("credential", "m-b-refused"): 1}

    # a cools down, b is disabled: c serves, and the upstream refuses the request itself.
    failing = {"model": MODEL, "messages": [{"role": "user", "content": "[sim:http-400]"}]}
    failed = httpx.post(url, json=failing, headers=headers, timeout=30)
    assert failed.status_code == 400
    row = logged(failed.headers["x-request-id"])
    assert (row.outcome, row.error_code) == ("error", "request")
    assert grew(after_served, _upstream_errors(gateway.url)) == {("request", "m-c-good"): 1}
