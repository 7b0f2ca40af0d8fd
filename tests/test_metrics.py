"""GET /metrics: who may read it, and counters that match the requests a live gateway served."""

from __future__ import annotations

import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from proxy.upstream.sim_events import expected_usage

MODEL = "deepseek/deepseek-v4-flash"


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape, keyed by (name, sorted labels); the parser validates the format."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def total(scrape: dict, name: str, **labels: str) -> float:
    wanted = set(labels.items())
    return sum(
        value for (sample, labelset), value in scrape.items() if sample == name and wanted <= set(labelset)
    )


@pytest.mark.django_db
class TestAccess:
    def test_a_loopback_caller_gets_the_text_format(self, client):
        response = client.get("/metrics")
        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/plain; version=")
        names = {family.name for family in text_string_to_metric_families(response.content.decode())}
        assert {"ccsite_requests", "ccsite_tokens", "ccsite_time_to_first_token_seconds"} <= names

    def test_a_remote_caller_is_refused_without_a_token(self, client):
        assert client.get("/metrics", REMOTE_ADDR="203.0.113.7").status_code == 403

    def test_a_remote_caller_behind_a_local_proxy_is_refused(self, client):
        # nginx connects from loopback and appends the real client to X-Forwarded-For.
        response = client.get("/metrics", headers={"X-Forwarded-For": "127.0.0.1, 203.0.113.7"})
        assert response.status_code == 403

    def test_with_a_token_every_caller_needs_it(self, client, settings):
        settings.CCSITE_METRICS_TOKEN = "scrape-token-123"
        assert client.get("/metrics").status_code == 401
        wrong = client.get("/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and wrong["WWW-Authenticate"] == "Bearer"
        good = client.get(
            "/metrics", REMOTE_ADDR="203.0.113.7", headers={"Authorization": "Bearer scrape-token-123"}
        )
        assert good.status_code == 200


def _scrape(url: str) -> dict:
    response = httpx.get(f"{url}/metrics", timeout=10)
    assert response.status_code == 200
    return samples(response.text)


@pytest.mark.live
def test_counters_match_the_requests_a_live_gateway_served(live):
    before = _scrape(live.url)
    headers = {"Authorization": f"Bearer {live.key}"}
    messages = [{"role": "user", "content": "[sim:text deltas=6]"}]
    for stream in (False, False, True):
        body = {"model": MODEL, "messages": messages, "stream": stream}
        response = httpx.post(f"{live.url}/v1/chat/completions", json=body, headers=headers, timeout=10)
        assert response.status_code == 200
    anthropic = {"model": MODEL, "max_tokens": 100, "messages": messages}
    response = httpx.post(
        f"{live.url}/v1/messages", json=anthropic, headers={"x-api-key": live.key}, timeout=10
    )
    assert response.status_code == 200
    failing = {"model": MODEL, "messages": [{"role": "user", "content": "[sim:error-fatal after=0]"}]}
    response = httpx.post(f"{live.url}/v1/chat/completions", json=failing, headers=headers, timeout=10)
    assert response.status_code >= 400
    secret_free = httpx.get(f"{live.url}/metrics", timeout=10).text
    assert live.key not in secret_free and live.upstream_key not in secret_free

    # Outcomes are recorded as each response ends; give the last one a moment.
    deadline = time.monotonic() + 5
    while True:
        after = _scrape(live.url)
        delta = total(after, "ccsite_requests_total") - total(before, "ccsite_requests_total")
        if delta >= 5 or time.monotonic() > deadline:
            break
        time.sleep(0.05)

    def grew(name: str, **labels: str) -> float:
        return total(after, name, **labels) - total(before, name, **labels)

    assert grew("ccsite_requests_total") == 5
    assert grew("ccsite_requests_total", surface="openai", model=MODEL, outcome="ok", status="200") == 3
    assert grew("ccsite_requests_total", surface="anthropic", model=MODEL, outcome="ok") == 1
    assert grew("ccsite_requests_total", surface="openai", outcome="error") == 1
    assert grew("ccsite_request_duration_seconds_count") == 5
    usage = expected_usage("text deltas=6")
    assert grew("ccsite_tokens_total", kind="output") == 4 * usage["outputTokens"]
    assert grew("ccsite_tokens_total", kind="input") == 4 * usage["inputTokens"]
    assert grew("ccsite_upstream_errors_total") == 1
