"""The several-process topology for real: PostgreSQL, Redis, two Daphne gateways and nginx on
loopback (`make cluster`), with the simulator as the upstream."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from ccsite import cluster as topology
from ccsite.localservices import exited, free_port

PROJECT_ROOT = Path(__file__).resolve().parent.parent
MODEL = "deepseek/deepseek-v4-flash"


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


def test_sigterm_to_one_process_loses_no_request_and_its_stream_completes(running):
    cluster, key = running
    failures: list[str] = []
    served = 0
    stop = threading.Event()

    def traffic() -> None:
        nonlocal served
        while not stop.is_set():
            try:
                response = _chat(cluster.url, key)
                if response.status_code != 200:
                    failures.append(f"{response.status_code} {response.text[:200]}")
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
    after = {httpx.get(f"{cluster.url}health", timeout=10).json()["pid"] for _ in range(4)}
    assert after == {cluster.gateway_pids[1]}
