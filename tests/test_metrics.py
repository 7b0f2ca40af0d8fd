"""GET /metrics: who may read it, and counters that match the requests a live gateway served."""

from __future__ import annotations

import time
from collections import Counter

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from proxy.upstream.simulator.events import expected_usage
from usage.models import RequestLog

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


def _logged_rows(request_ids: list[str], timeout: float = 5.0) -> list[RequestLog]:
    """The request log rows of these requests, once every one of them has been written."""
    deadline = time.monotonic() + timeout
    while True:
        rows = list(RequestLog.objects.filter(request_id__in=request_ids))
        if len(rows) >= len(request_ids) or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)


@pytest.mark.live
def test_counters_match_the_request_log_rows_of_a_live_gateway(live):
    before = _scrape(live.url)
    headers = {"Authorization": f"Bearer {live.key}"}
    messages = [{"role": "user", "content": "[sim:text deltas=6]"}]
    responses = []
    for stream in (False, False, True):
        body = {"model": MODEL, "messages": messages, "stream": stream}
        responses.append(
            httpx.post(f"{live.url}/v1/chat/completions", json=body, headers=headers, timeout=10)
        )
    anthropic = {"model": MODEL, "max_tokens": 100, "messages": messages}
    responses.append(
        httpx.post(f"{live.url}/v1/messages", json=anthropic, headers={"x-api-key": live.key}, timeout=10)
    )
    responses.append(
        httpx.post(
            f"{live.url}/v1/responses", json={"model": MODEL, "input": "hi"}, headers=headers, timeout=10
        )
    )
    responses.append(
        httpx.post(
            f"{live.url}/v1/messages/count_tokens",
            json={"model": MODEL, "messages": messages},
            headers={"x-api-key": live.key},
            timeout=10,
        )
    )
    responses.append(httpx.get(f"{live.url}/v1/models", headers=headers, timeout=10))
    assert [response.status_code for response in responses] == [200] * 7
    failing = {"model": MODEL, "messages": [{"role": "user", "content": "[sim:error-fatal after=0]"}]}
    responses.append(httpx.post(f"{live.url}/v1/chat/completions", json=failing, headers=headers, timeout=10))
    assert responses[-1].status_code >= 400
    secret_free = httpx.get(f"{live.url}/metrics", timeout=10).text
    assert live.key not in secret_free and live.upstream_key not in secret_free

    rows = _logged_rows([response.headers["x-request-id"] for response in responses])
    assert len(rows) == len(responses)
    after = _scrape(live.url)

    def grew(name: str, **labels: str) -> float:
        return total(after, name, **labels) - total(before, name, **labels)

    # Every row is counted once, under the same surface, outcome and status as the log has it.
    logged = Counter((row.surface, row.outcome, str(row.http_status)) for row in rows)
    for (surface, outcome, status), count in logged.items():
        assert grew("ccsite_requests_total", surface=surface, outcome=outcome, status=status) == count
    assert grew("ccsite_requests_total") == len(rows)
    assert set(logged) >= {
        ("openai-chat", "ok", "200"),
        ("anthropic-messages", "ok", "200"),
        ("responses", "ok", "200"),
        ("count-tokens", "ok", "200"),
        ("models", "ok", "200"),
        ("openai-chat", "error", str(responses[-1].status_code)),
    }
    assert grew("ccsite_requests_total", surface="openai-chat", model=MODEL, outcome="ok") == 3
    assert grew("ccsite_request_duration_seconds_count") == len(rows)
    for kind, field in (("input", "input_tokens"), ("output", "output_tokens")):
        assert grew("ccsite_tokens_total", kind=kind) == sum(getattr(row, field) for row in rows)
    usage = expected_usage("text deltas=6")
    assert grew("ccsite_tokens_total", surface="openai-chat", kind="output") == 3 * usage["outputTokens"]
    assert grew("ccsite_upstream_errors_total") == sum(1 for row in rows if row.outcome == "error")
    # Every slot a request took is given back; the writer has nothing left to write.
    assert total(after, "ccsite_credential_in_flight") == 0
    assert total(after, "ccsite_request_log_dropped_total") == 0


def _refusal_count(kind: str) -> float:
    from proxy import metrics

    return metrics.LIMIT_REFUSALS.labels("openai-chat", kind)._value.get()


def test_only_refusals_by_a_limit_count_as_limit_refusals_and_no_key_is_a_label():
    from proxy import metrics
    from proxy.outcomes import RequestOutcome

    def outcome(status: str, kind: str, http_status: int) -> RequestOutcome:
        finished = RequestOutcome("openai-chat", None, MODEL, MODEL, False)
        finished.status, finished.error_kind, finished.http_status = status, kind, http_status
        finished.credential_label = "main"
        return finished

    before = _refusal_count("rate_limit_requests"), _refusal_count("rate_limit")
    metrics.record(outcome("limited", "rate_limit_requests", 429))
    metrics.record(outcome("error", "rate_limit", 429))  # every key busy or cooling: routing's 429
    after = _refusal_count("rate_limit_requests"), _refusal_count("rate_limit")
    assert after == (before[0] + 1, before[1])
    labels = {
        value
        for family in text_string_to_metric_families(metrics.exposition().decode())
        for sample in family.samples
        for value in sample.labels.values()
    }
    assert not any(value.startswith(("ccs_", "user_", "sk-")) for value in labels)


def test_a_remembered_child_is_the_series_prometheus_client_would_name():
    from proxy import metrics

    series = ("openai-chat", "child-test-model", "ok", "200")
    before = metrics.REQUESTS.labels(*series)._value.get()
    assert metrics.child(metrics.REQUESTS, *series) is metrics.REQUESTS.labels(*series)
    metrics.child(metrics.REQUESTS, *series).inc()
    metrics.child(metrics.REQUESTS, *series).inc()
    assert metrics.REQUESTS.labels(*series)._value.get() == before + 2
    other = metrics.child(metrics.REQUESTS, "openai-chat", "child-test-model", "ok", "500")
    assert other is not metrics.child(metrics.REQUESTS, *series)


def _model_labels(scrape: dict) -> set[str]:
    return {dict(labels)["model"] for (name, labels) in scrape if name == "ccsite_requests_total"}


@pytest.mark.live
def test_the_model_label_is_the_served_model_whatever_the_client_called_it(live):
    from catalog import services

    services.set_alias("fast", MODEL)
    services.set_alias("qwen-*", MODEL)  # a wildcard alias: any name it matches is this model
    headers = {"Authorization": f"Bearer {live.key}"}
    url = f"{live.url}/v1/chat/completions"
    messages = [{"role": "user", "content": "hi"}]

    def ask(name: str) -> httpx.Response:
        return httpx.post(url, json={"model": name, "messages": messages}, headers=headers, timeout=10)

    deadline = time.monotonic() + 5
    while ask("qwen-probe").status_code != 200:  # the gateway reloads its catalog within a second
        assert time.monotonic() < deadline
        time.sleep(0.1)
    before = _scrape(live.url)
    served_names = [MODEL, MODEL.upper(), "FAST", "fast", "qwen-anything", "qwen-something-else"]
    unknown_names = ["zz-random-garbage-123", "ZZ-other-garbage"]
    assert [ask(name).status_code for name in served_names] == [200] * len(served_names)
    refused = [ask(name) for name in unknown_names]
    assert [response.status_code for response in refused] == [404] * len(unknown_names)
    rows = _logged_rows([response.headers["x-request-id"] for response in refused])
    assert [row.model for row in rows] == ["", ""]  # the usage report's by-model table has no such model
    after = _scrape(live.url)

    def grew(**labels: str) -> float:
        return total(after, "ccsite_requests_total", **labels) - total(
            before, "ccsite_requests_total", **labels
        )

    assert grew(surface="openai-chat", model=MODEL, outcome="ok") == len(served_names)
    assert grew(surface="openai-chat", model="unknown", outcome="invalid", status="404") == len(unknown_names)
    client_names = {name for name in served_names + unknown_names if name != MODEL}
    assert not client_names & _model_labels(after)
