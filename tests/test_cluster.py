"""The several-process topology for real: PostgreSQL, Redis, two Daphne gateways and nginx on
loopback (`make cluster`), with the simulator as the upstream."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psycopg
import pytest
import websocket
from prometheus_client.parser import text_string_to_metric_families

from ccsite import cluster as topology
from ccsite.localservices import exited, free_port

PROJECT_ROOT = Path(__file__).resolve().parent.parent
MODEL = "deepseek/deepseek-v4-flash"
ADMIN_PASSWORD = "cluster-admin-pw-1"
CREATE_ADMIN = ("createsuperuser", "--noinput", "--username", "ops", "--email", "ops@example.com")


def _missing() -> str:
    try:
        from ccsite.localservices import postgres_bin

        postgres_bin("initdb")
        topology.nginx_binary()
    except topology.MissingServer as exc:
        return str(exc)
    return "" if shutil.which("redis-server") else "redis-server is not installed"


pytestmark = [pytest.mark.live, pytest.mark.skipif(bool(_missing()), reason=_missing() or "ok")]


@pytest.fixture(scope="module")
def running(simulator):
    env = {
        "DJANGO_SETTINGS_MODULE": "ccsite.settings",
        "CCSITE_ENV_FILE": "",
        "CC_UPSTREAM_BASE_URL": simulator.url,
        "CCSITE_SHUTDOWN_GRACE_SECONDS": "20",
        # Long enough that only the cross-process change signals can make a process reload in time.
        "CCSITE_CREDENTIAL_CACHE_SECONDS": "60",
        "CCSITE_KEY_CACHE_SECONDS": "60",
        # The test settings turn the writer thread off in this process's environment: as deployed.
        "CCSITE_REQUEST_LOG_BACKGROUND": "1",
    }
    # Not under pytest's private temp folder: the postgres system user (tests as root) must reach it.
    state = Path(tempfile.mkdtemp(prefix="ccsite-cluster-"))
    state.chmod(0o755)
    cluster = topology.start(state, host="127.0.0.1", port=free_port(), processes=2, env=env)
    manage_env = {**os.environ, **env, "DATABASE_URL": cluster.database_url, "REDIS_URL": cluster.redis_url}
    try:
        key = _manage(manage_env, "create_client_key", "--user", "cluster", "--create-user").split()[-1]
        _manage(
            manage_env, "add_upstream_credential", "--label", "sim", "--api-key", "user_cluster_00000000001"
        )
        _manage({**manage_env, "DJANGO_SUPERUSER_PASSWORD": ADMIN_PASSWORD}, *CREATE_ADMIN)
        yield cluster, key
    finally:
        topology.stop(state)
        shutil.rmtree(state, ignore_errors=True)


def _manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def _manage_env(cluster: topology.Cluster) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "ccsite.settings",
        "CCSITE_ENV_FILE": "",
        "DATABASE_URL": cluster.database_url,
        "REDIS_URL": cluster.redis_url,
    }


def _gateway_urls(cluster: topology.Cluster) -> list[str]:
    return [f"http://127.0.0.1:{port}/" for port in cluster.gateway_ports]


def _log_rows(cluster: topology.Cluster, request_ids: list[str]) -> int:
    """How many request log rows these requests have in the cluster's PostgreSQL."""
    with psycopg.connect(cluster.database_url) as connection:
        query = "SELECT count(*) FROM usage_requestlog WHERE request_id = ANY(%s)"
        return connection.execute(query, (request_ids,)).fetchone()[0]


def _wait_for_rows(cluster: topology.Cluster, request_ids: list[str], timeout: float = 10.0) -> int:
    deadline = time.monotonic() + timeout
    while (count := _log_rows(cluster, request_ids)) < len(request_ids) and time.monotonic() < deadline:
        time.sleep(0.1)
    return count


def _new_key(cluster: topology.Cluster, user: str, *limits: str) -> str:
    """A fresh client key, with these limit options (manage.py client_keys limit ...)."""
    env = _manage_env(cluster)
    key = _manage(env, "create_client_key", "--user", user, "--create-user").split()[-1]
    if limits:
        _manage(env, "client_keys", "limit", key[:16], *limits)
    return key


async def _fire(urls: list[str], key: str, count: int, text: str) -> list[httpx.Response]:
    """``count`` chat requests at once, alternating between ``urls``."""
    body = {"model": MODEL, "messages": [{"role": "user", "content": text}]}
    async with httpx.AsyncClient(timeout=60) as client:
        return await asyncio.gather(
            *(
                client.post(
                    f"{urls[index % len(urls)]}v1/chat/completions",
                    json=body,
                    headers={"Authorization": f"Bearer {key}"},
                )
                for index in range(count)
            )
        )


class Admin:
    """The admin of one gateway process, signed in (the session is in the shared database)."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self.browser = httpx.Client(base_url=self.url, timeout=10)
        self.browser.get("/admin/login/")
        response = self.browser.post(
            "/admin/login/?next=/admin/",
            data={
                "username": "ops",
                "password": ADMIN_PASSWORD,
                "csrfmiddlewaretoken": self.browser.cookies["csrftoken"],
            },
            headers={"Referer": f"{self.url}/admin/login/"},
        )
        assert response.status_code == 302, response.text[:300]

    def toggle_model(self, upstream_id: str, *, enabled: bool) -> None:
        listing = self.browser.get("/admin/catalog/model/", params={"q": upstream_id}).text
        pk = re.search(r"/admin/catalog/model/(\d+)/change/", listing)
        assert pk, "the model is not in the admin's list"
        response = self.browser.post(
            "/admin/catalog/model/",
            data={
                "action": "enable_models" if enabled else "disable_models",
                "_selected_action": [pk.group(1)],
                "index": "0",
                "csrfmiddlewaretoken": self.browser.cookies["csrftoken"],
            },
            headers={"Referer": f"{self.url}/admin/catalog/model/"},
        )
        assert response.status_code == 302, response.text[:300]

    def live_view(self, ws_url: str) -> websocket.WebSocket:
        origin = re.sub(r"^ws", "http", ws_url).split("/ws/")[0]
        cookie = f"sessionid={self.browser.cookies['sessionid']}"
        return websocket.create_connection(
            f"{ws_url}/ws/usage/live/", cookie=cookie, origin=origin, timeout=10
        )

    def close(self) -> None:
        self.browser.close()


def _rows_seen(socket: websocket.WebSocket, request_ids: set[str], timeout: float = 10.0) -> set[str]:
    seen: set[str] = set()
    deadline = time.monotonic() + timeout
    while not request_ids <= seen and time.monotonic() < deadline:
        socket.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            message = json.loads(socket.recv())
        except websocket.WebSocketTimeoutException:
            break
        seen |= {row["request_id"] for row in message["rows"]}
    return seen


def _chat(url: str, key: str, *, stream: bool = False, text: str = "[sim:text deltas=4]") -> httpx.Response:
    body = {"model": MODEL, "messages": [{"role": "user", "content": text}], "stream": stream}
    headers = {"Authorization": f"Bearer {key}"}
    return httpx.post(f"{url}v1/chat/completions", json=body, headers=headers, timeout=30)


def test_both_processes_serve_behind_nginx_and_health_shows_each_pid(running):
    cluster, _ = running
    answers = [httpx.get(f"{cluster.url}health", timeout=10).json() for _ in range(12)]
    assert {answer["pid"] for answer in answers} == set(cluster.gateway_pids)
    assert all(answer["database_engine"] == "postgresql" and answer["redis"] == "ok" for answer in answers)


def test_metrics_of_every_process_add_up_in_one_scrape(running):
    cluster, key = running

    def requests_total(url: str) -> float:
        text = httpx.get(f"{url}/metrics", timeout=10).text
        return sum(
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == "ccsite_requests_total"
        )

    before = requests_total(cluster.url.rstrip("/"))
    for _ in range(6):
        assert _chat(cluster.url, key).status_code == 200
    time.sleep(0.3)  # each outcome is recorded as its response ends
    # Whichever process answers the scrape, it reports the requests both processes served.
    per_process = [requests_total(f"http://127.0.0.1:{port}") for port in cluster.gateway_ports]
    assert per_process == [before + 6, before + 6]


def test_every_request_served_by_either_process_lands_once_in_postgresql(running):
    cluster, key = running
    ids = []
    for url in _gateway_urls(cluster) * 3:
        response = _chat(url, key, stream=len(ids) % 2 == 1)
        assert response.status_code == 200
        ids.append(response.headers["x-request-id"])
    assert len(set(ids)) == 6
    assert _wait_for_rows(cluster, ids) == 6
    time.sleep(1.5)  # a later flush must not write any of them twice
    assert _log_rows(cluster, ids) == 6


def test_an_admin_toggle_in_one_process_is_obeyed_by_the_other_within_a_second(running):
    cluster, key = running
    first, second = _gateway_urls(cluster)
    assert _chat(first, key).status_code == 200 and _chat(second, key).status_code == 200
    admin = Admin(first)
    try:
        admin.toggle_model(MODEL, enabled=False)
        toggled_at = time.monotonic()
        assert _chat(first, key).status_code == 403  # at once where it was made
        while (status := _chat(second, key).status_code) != 403 and time.monotonic() - toggled_at < 3:
            time.sleep(0.02)
        elapsed = time.monotonic() - toggled_at
        admin.toggle_model(MODEL, enabled=True)
        enabled_at = time.monotonic()
        while _chat(second, key).status_code != 200 and time.monotonic() - enabled_at < 3:
            time.sleep(0.02)
        back = time.monotonic() - enabled_at
    finally:
        admin.close()
    assert status == 403 and elapsed < 1.0
    assert back < 1.0


def test_the_live_view_shows_requests_served_by_the_other_process_and_passes_nginx(running):
    cluster, key = running
    first, second = _gateway_urls(cluster)
    admin = Admin(first)
    direct = admin.live_view(first.replace("http", "ws", 1).rstrip("/"))
    through_nginx = admin.live_view(cluster.url.replace("http", "ws", 1).rstrip("/"))
    try:
        served_by_second = _chat(second, key).headers["x-request-id"]
        served_by_first = _chat(first, key).headers["x-request-id"]
        assert served_by_second in _rows_seen(direct, {served_by_second})
        assert {served_by_first, served_by_second} <= _rows_seen(
            through_nginx, {served_by_first, served_by_second}
        )
    finally:
        direct.close()
        through_nginx.close()
        admin.close()


def test_two_processes_share_one_concurrency_cap_of_a_key(running):
    cluster, _ = running
    key = _new_key(cluster, "capped-user", "--concurrent", "2")
    time.sleep(1.0)
    responses = asyncio.run(_fire(_gateway_urls(cluster), key, 8, "[sim:text deltas=20 delay_ms=60]"))
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200, 200] + [429] * 6
    refused = next(response for response in responses if response.status_code == 429)
    assert refused.json()["error"]["code"] == "rate_limit_concurrency"


def test_two_processes_share_one_token_budget(running):
    cluster, _ = running
    budget = 1_000
    key = _new_key(cluster, "budget-user", "--budget-tokens", str(budget), "--period", "day")
    time.sleep(1.0)
    urls = _gateway_urls(cluster)
    used: list[int] = []
    refusal = None
    for index in range(40):  # one at a time, alternating: each sees what the other counted
        response = asyncio.run(_fire([urls[index % 2]], key, 1, "[sim:text input=150] hi"))[0]
        if response.status_code != 200:
            refusal = response
            break
        used.append(response.json()["usage"]["total_tokens"])
        time.sleep(0.05)  # the request's usage is settled just after its response
    assert refusal is not None and refusal.status_code == 429
    assert refusal.json()["error"]["code"] == "budget_exhausted"
    # One budget: both processes together served about what it holds (the last request admitted
    # may go past it), not what two separate budgets would allow.
    assert len(used) >= 2 and budget - max(used) <= sum(used) <= budget + max(used)
    for url in urls:  # used up, for both processes
        later = asyncio.run(_fire([url], key, 1, "hi"))[0]
        assert later.status_code == 429 and later.json()["error"]["code"] == "budget_exhausted"


def test_two_processes_share_one_credential_cap(running):
    cluster, key = running
    env = _manage_env(cluster)
    _manage(env, "add_upstream_credential", "--label", "capped", "--api-key", "user_cluster_00000000002",
            "--max-concurrent", "2")  # fmt: skip
    _manage(env, "credentials", "disable", "sim")
    try:
        time.sleep(1.0)
        responses = asyncio.run(_fire(_gateway_urls(cluster), key, 8, "[sim:text deltas=20 delay_ms=60]"))
    finally:
        _manage(env, "credentials", "enable", "sim")
        _manage(env, "credentials", "disable", "capped")
        time.sleep(1.0)
    assert sorted(response.status_code for response in responses) == [200, 200] + [429] * 6
    assert all(
        response.headers["Retry-After"] == "1" for response in responses if response.status_code == 429
    )


def test_a_key_cooled_down_by_one_process_is_skipped_by_the_other(running, simulator):
    from proxy.upstream.simulator.recorder import key_fingerprint

    cluster, key = running
    env = _manage_env(cluster)
    secret = "user_cluster_00000000003"
    httpx.post(f"{simulator.url}/_sim/keys", json={"key": secret, "scenario": "http-500"}, timeout=10)
    _manage(env, "add_upstream_credential", "--label", "flaky", "--api-key", secret)
    first, second = _gateway_urls(cluster)
    flaky = key_fingerprint(secret)

    def upstream_keys() -> list[str]:
        records = httpx.get(f"{simulator.url}/_sim/requests", timeout=10).json()["requests"]
        return [r["key_fingerprint"] for r in records if r["path"] == "/alpha/generate"]

    def forget_upstream_requests() -> None:
        httpx.delete(f"{simulator.url}/_sim/requests", timeout=10).raise_for_status()

    try:
        time.sleep(1.0)  # both processes reload the credentials
        forget_upstream_requests()
        for _ in range(6):  # round robin: the flaky key's turn comes, fails, and cools it
            assert _chat(first, key).status_code == 200  # failed over, the client never sees it
            if flaky in upstream_keys():
                break
        assert flaky in upstream_keys()
        forget_upstream_requests()
        for _ in range(6):  # within the cooldown (5 s): the other process never tries it
            assert _chat(second, key).status_code == 200
        assert upstream_keys() and flaky not in upstream_keys()
    finally:
        _manage(env, "credentials", "disable", "flaky")
        time.sleep(1.0)


def test_sigterm_to_one_process_loses_no_request_and_its_stream_completes(running):
    cluster, key = running
    failures: list[str] = []
    served = 0
    request_ids: list[str] = []
    stop = threading.Event()

    def traffic() -> None:
        nonlocal served
        while not stop.is_set():
            try:
                response = _chat(cluster.url, key)
                if response.status_code != 200:
                    failures.append(f"{response.status_code} {response.text[:200]}")
                request_ids.append(response.headers.get("x-request-id", ""))
                served += 1
            except httpx.HTTPError as exc:
                failures.append(repr(exc))

    # A stream held open on every process, so the one that is stopped has one to finish.
    stream_body = {
        "model": MODEL,
        "stream": True,
        "messages": [{"role": "user", "content": "[sim:text deltas=30 delay_ms=100]"}],
    }
    clients = [httpx.Client(timeout=30) for _ in cluster.gateway_ports]
    streams = [
        client.send(
            client.build_request(
                "POST",
                f"http://127.0.0.1:{port}/v1/chat/completions",
                headers={"Authorization": f"Bearer {key}"},
                json=stream_body,
            ),
            stream=True,
        )
        for client, port in zip(clients, cluster.gateway_ports, strict=True)
    ]
    workers = [threading.Thread(target=traffic) for _ in range(3)]
    for worker in workers:
        worker.start()
    time.sleep(0.5)
    victim = cluster.gateway_pids[0]
    os.kill(victim, signal.SIGTERM)
    stopped_stream = streams[0].read().decode()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not exited(victim):
        time.sleep(0.1)
    time.sleep(0.5)  # traffic on the remaining process only
    stop.set()
    for worker in workers:
        worker.join()
    for response, client in zip(streams, clients, strict=True):
        response.close()
        client.close()

    assert exited(victim), "the stopped process did not exit"
    assert stopped_stream.rstrip().endswith("data: [DONE]")
    assert served > 10 and failures == []
    # Every request either process answered has its row, the stopped one's included.
    request_ids += [stream.headers["x-request-id"] for stream in streams]
    assert _wait_for_rows(cluster, request_ids) == len(request_ids) == served + 2
    after = {httpx.get(f"{cluster.url}health", timeout=10).json()["pid"] for _ in range(4)}
    assert after == {cluster.gateway_pids[1]}
