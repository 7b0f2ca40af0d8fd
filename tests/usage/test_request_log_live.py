"""One request-log row per /v1 request, whatever became of it, through a live Daphne gateway and
the simulator; the request id each response carries names its row."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from accounts import services
from tests.factories import make_client_key, make_credential
from tests.live import daphne_process, free_port
from tests.usage.helpers import wait_for_row

pytestmark = [pytest.mark.live]

MODEL = "deepseek/deepseek-v4-flash"


@pytest.fixture(scope="module")
def log_gateway(simulator, django_db_setup, django_db_blocker) -> Iterator[str]:
    """A gateway with short upstream timeouts (to see a timeout row) writing logs every 50 ms."""
    env = {
        "CC_UPSTREAM_BASE_URL": simulator.url,
        "CCSITE_CREDENTIAL_CACHE_SECONDS": "0",
        "CC_FIRST_EVENT_TIMEOUT": "1",
        "CC_IDLE_TIMEOUT": "1",
        "CC_MAX_RETRIES": "0",
        "CCSITE_REQUEST_LOG_BACKGROUND": "1",
        "CCSITE_REQUEST_LOG_FLUSH_SECONDS": "0.05",
    }
    with daphne_process(port=free_port(), env=env) as process:
        yield process.url


class Gateway:
    def __init__(self, url: str, key: str, key_row: Any, simulator_url: str, upstream_key: str) -> None:
        self.url, self.key, self.key_row = url, key, key_row
        self.simulator_url, self.upstream_key = simulator_url, upstream_key

    def chat(self, text: str, *, stream: bool = False, **options: Any) -> httpx.Response:
        body = {"model": MODEL, "messages": [{"role": "user", "content": text}], "stream": stream}
        return httpx.post(
            f"{self.url}/v1/chat/completions",
            headers={"Authorization": f"Bearer {self.key}", "User-Agent": "log-test/1.0"},
            json=body,
            timeout=20,
            **options,
        )

    def messages(self, text: str, *, stream: bool = False, path: str = "/v1/messages") -> httpx.Response:
        body = {
            "model": MODEL,
            "max_tokens": 100,
            "messages": [{"role": "user", "content": text}],
            "stream": stream,
        }
        headers = {
            "x-api-key": self.key,
            "anthropic-version": "2023-06-01",
            "X-Claude-Code-Session-Id": "sess-42",
        }
        return httpx.post(f"{self.url}{path}", headers=headers, json=body, timeout=20)


@pytest.fixture
def gw(log_gateway, simulator, transactional_db) -> Gateway:
    upstream_key = f"user_log_{secrets.token_hex(8)}"
    make_credential(label=f"sim-{upstream_key[-6:]}", api_key=upstream_key)
    key_row, key = make_client_key()
    return Gateway(log_gateway, key, key_row, simulator.url, upstream_key)


def request_id(response: httpx.Response) -> str:
    rid = response.headers["x-request-id"]
    assert rid.startswith("req_") and response.headers["request-id"] == rid
    return rid


def test_served_non_streaming_chat(gw):
    response = gw.chat("[sim:cache-usage]")
    assert response.status_code == 200
    usage = response.json()["usage"]
    row = wait_for_row(request_id(response))
    assert (row.outcome, row.http_status, row.surface, row.stream) == ("ok", 200, "openai-chat", False)
    assert (row.user_id, row.client_key_id) == (gw.key_row.user_id, gw.key_row.pk)
    assert (row.client_model, row.model) == (MODEL, MODEL)
    assert row.input_tokens == usage["prompt_tokens"] and row.output_tokens == usage["completion_tokens"]
    assert row.cache_read_tokens == 1792 and row.cache_write_tokens == 256 and not row.tokens_estimated
    assert row.uncached_input_tokens == row.input_tokens - 1792 - 256
    assert row.first_token_ms is not None and 0 < row.first_token_ms <= row.duration_ms
    assert row.user_agent == "log-test/1.0"


def test_served_anthropic_stream(gw):
    response = gw.messages("hello", stream=True)
    assert response.status_code == 200 and b"message_stop" in response.content
    row = wait_for_row(request_id(response))
    assert (row.outcome, row.http_status, row.surface, row.stream) == ("ok", 200, "anthropic-messages", True)
    assert row.output_tokens > 0 and row.input_tokens > 0 and row.first_token_ms is not None
    assert row.session_id == "sess-42"


@pytest.mark.parametrize(
    ("scenario", "status", "code"), [("http-403", 403, "model"), ("http-500", 502, "retryable")]
)
def test_upstream_http_errors(gw, scenario, status, code):
    response = gw.chat(f"[sim:{scenario}]")
    assert response.status_code == status
    row = wait_for_row(request_id(response))
    assert (row.outcome, row.http_status, row.error_code) == ("error", status, code)
    assert row.input_tokens == 0 and not row.tokens_estimated  # the upstream refused: nothing used


def test_in_band_error_mid_stream(gw):
    response = gw.chat("[sim:error-fatal after=2]", stream=True)
    assert response.status_code == 200 and b'"error"' in response.content
    row = wait_for_row(request_id(response))
    assert (row.outcome, row.http_status, row.stream) == ("error", 200, True)
    assert row.error_code and row.error_message
    assert row.input_tokens > 0 and row.tokens_estimated  # no usage came: the gateway's estimate


def test_upstream_timeout(gw):
    response = gw.chat("[sim:stall after=1]")
    assert response.status_code == 504
    row = wait_for_row(request_id(response))
    assert (row.outcome, row.http_status, row.error_code) == ("error", 504, "timeout")


def test_client_disconnect_mid_stream_is_cancelled_with_tokens(gw):
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "[sim:paced deltas=50 delay_ms=100]"}],
        "stream": True,
    }
    with httpx.stream(
        "POST",
        f"{gw.url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {gw.key}"},
        json=body,
        timeout=10,
    ) as response:
        rid = request_id(response)
        next(response.iter_bytes())
    row = wait_for_row(rid)
    assert (row.outcome, row.http_status, row.stream) == ("cancelled", 200, True)
    assert row.input_tokens > 0 and row.tokens_estimated


@pytest.mark.parametrize(
    ("path", "surface"),
    [
        ("/v1/chat/completions", "openai-chat"),
        ("/v1/messages", "anthropic-messages"),
        ("/v1/messages/count_tokens", "count-tokens"),
        ("/v1/responses", "responses"),
    ],
)
def test_gateway_400(gw, path, surface):
    response = httpx.post(
        f"{gw.url}{path}",
        headers={"Authorization": f"Bearer {gw.key}", "x-api-key": gw.key},
        content=b"{",
        timeout=10,
    )
    assert response.status_code == 400
    row = wait_for_row(request_id(response))
    assert (row.outcome, row.http_status, row.error_code, row.surface, row.user_id) == (
        "invalid",
        400,
        "invalid_json",
        surface,
        gw.key_row.user_id,
    )


def test_auth_failure_with_a_known_key_prefix(gw):
    wrong = gw.key[:-4] + ("aaaa" if not gw.key.endswith("aaaa") else "bbbb")
    response = httpx.post(
        f"{gw.url}/v1/messages", headers={"x-api-key": wrong}, json={"model": MODEL}, timeout=10
    )
    assert response.status_code == 401
    row = wait_for_row(request_id(response))
    assert (row.outcome, row.http_status, row.surface) == ("unauthorized", 401, "anthropic-messages")
    assert (row.user_id, row.client_key_id) == (gw.key_row.user_id, gw.key_row.pk)
    assert wrong not in row.error_message and gw.key not in row.error_message


def test_revoked_key_is_logged_against_it(gw):
    services.client_key_revoke(key=gw.key_row)
    response = gw.chat("hi")
    assert response.status_code == 401
    assert wait_for_row(request_id(response)).outcome == "unauthorized"


def test_count_tokens_and_models(gw):
    counted = gw.messages("hello there", path="/v1/messages/count_tokens")
    assert counted.status_code == 200
    row = wait_for_row(request_id(counted))
    assert (row.outcome, row.surface, row.model) == ("ok", "count-tokens", MODEL)
    models = httpx.get(f"{gw.url}/v1/models", headers={"Authorization": f"Bearer {gw.key}"}, timeout=10)
    assert models.status_code == 200
    assert wait_for_row(request_id(models)).surface == "models"


def test_last_used_is_written(gw):
    response = gw.chat("hi")
    wait_for_row(request_id(response))
    gw.key_row.refresh_from_db()
    assert gw.key_row.last_used_at is not None
