"""`make soak`: the several-process topology under mixed traffic for a while, one process
restarted gracefully midway.

`make cluster`'s topology (PostgreSQL, Redis, two Daphne gateways, nginx; all on loopback, in a
temporary folder) with the simulator upstream, two routed credentials (one with a concurrency
cap), a client key and its user under limits high enough never to refuse, request logging on.
Worker threads send streaming and non-streaming requests on both surfaces through nginx until
the time is up; halfway, the first gateway gets SIGTERM and a new one starts on its port.

Reported: requests sent, client errors (anything but a complete 200), log rows against
requests (by request id, in PostgreSQL), and each process's RSS after the warm-up and at the
end. Bounded: it stops by itself after ``seconds`` (plus start-up and a drain).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg

from ccsite import cluster as topology
from ccsite.localservices import exited, free_port
from ccsite.serve import daphne_argv
from proxy.bench.runner import GENEROUS_BUDGET, GENEROUS_LIMITS, PROJECT_ROOT, _child_env, _manage, _simulator

MODEL = "deepseek/deepseek-v4-flash"
WORKERS = 6
WARMUP_SECONDS = 10.0
TEXT = "[sim:text deltas=20 delay_ms=10] soak"


@dataclass
class SoakResult:
    seconds: float
    requests: int = 0
    errors: list[str] = field(default_factory=list)
    log_rows: int = 0
    rss_mb: dict[str, tuple[float, float]] = field(default_factory=dict)  # process -> (start, end)
    restart_seconds: float = 0.0


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _request(client: httpx.Client, url: str, key: str, index: int) -> tuple[bool, str]:
    """One request of the mix (index picks surface and streaming); (complete 200, request id)."""
    stream = index % 2 == 0
    messages = [{"role": "user", "content": TEXT}]
    if index % 4 < 2:
        path, headers = "v1/chat/completions", {"Authorization": f"Bearer {key}"}
        body = {"model": MODEL, "messages": messages, "stream": stream}
        done = "data: [DONE]"
    else:
        path, headers = "v1/messages", {"x-api-key": key}
        body = {"model": MODEL, "max_tokens": 200, "messages": messages, "stream": stream}
        done = "event: message_stop"
    response = client.post(url + path, json=body, headers=headers)
    complete = response.status_code == 200 and (not stream or done in response.text)
    return complete, response.headers.get(
        "x-request-id", ""
    ) or f"{response.status_code}: {response.text[:200]}"


def _traffic(url: str, key: str, stop: threading.Event, result: SoakResult, ids: list[str]) -> None:
    lock = threading.Lock()

    def work(worker: int) -> None:
        index = worker
        with httpx.Client(timeout=60) as client:
            while not stop.is_set():
                try:
                    complete, detail = _request(client, url, key, index)
                except httpx.HTTPError as exc:
                    complete, detail = False, repr(exc)
                with lock:
                    result.requests += 1
                    if complete:
                        ids.append(detail)
                    else:
                        result.errors.append(detail)
                index += 1

    threads = [threading.Thread(target=work, args=(n,)) for n in range(WORKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _restart(state: Path, cluster: topology.Cluster, env: dict[str, str], which: int) -> int:
    """SIGTERM gateway ``which``, wait for it to exit, start a new one on its port; the new pid."""
    old = cluster.gateway_pids[which]
    os.kill(old, signal.SIGTERM)
    deadline = time.monotonic() + 60
    while not exited(old) and time.monotonic() < deadline:
        time.sleep(0.05)
    port = cluster.gateway_ports[which]
    gateway_env = {
        **env,
        "DATABASE_URL": cluster.database_url,
        "REDIS_URL": cluster.redis_url,
        "PROMETHEUS_MULTIPROC_DIR": str(state / "metrics"),
    }
    argv = daphne_argv("127.0.0.1", port)
    with (state / f"gateway-{port}.log").open("ab") as log:
        process = subprocess.Popen(
            argv, cwd=PROJECT_ROOT, env=gateway_env, stdout=log, stderr=log, start_new_session=True
        )
    topology._children[process.pid] = process
    cluster.gateway_pids[which] = process.pid
    (state / topology.STATE_FILE).write_text(json.dumps(cluster.__dict__))
    topology._wait_healthy(f"http://127.0.0.1:{port}/health")
    return process.pid


def _rows(database_url: str, ids: list[str]) -> int:
    with psycopg.connect(database_url) as connection:
        query = "SELECT count(*) FROM usage_requestlog WHERE request_id = ANY(%s)"
        return int(connection.execute(query, (ids,)).fetchone()[0])


def run_soak(seconds: float, say: object = print) -> SoakResult:
    result = SoakResult(seconds=seconds)
    state = Path(tempfile.mkdtemp(prefix="ccsite-soak-"))
    state.chmod(0o755)  # the postgres system user (when run as root) must reach it
    env = _child_env(state / "data", CCSITE_REQUEST_LOG_BACKGROUND="1", CCSITE_SHUTDOWN_GRACE_SECONDS="30")
    (state / "data").mkdir()
    simulator = _simulator(env)
    simulator.start("/_sim/health")
    try:
        gateway_env = {**env, "CC_UPSTREAM_BASE_URL": simulator.url}
        say("starting PostgreSQL, Redis, 2 gateways and nginx ...")  # type: ignore[operator]
        cluster = topology.start(state, host="127.0.0.1", port=free_port(), processes=2, env=gateway_env)
        manage_env = {**gateway_env, "DATABASE_URL": cluster.database_url, "REDIS_URL": cluster.redis_url}
        key = _manage(manage_env, "create_client_key", "--user", "soak", "--create-user").split()[-1]
        _manage(manage_env, "user_limits", "soak", *GENEROUS_LIMITS, *GENEROUS_BUDGET)
        _manage(manage_env, "client_keys", "limit", key[:16], *GENEROUS_LIMITS, *GENEROUS_BUDGET)
        _manage(
            manage_env, "add_upstream_credential", "--label", "soak-a", "--api-key", "user_soak_000000000001"
        )
        second = ("--label", "soak-b", "--api-key", "user_soak_000000000002", "--max-concurrent", "3")
        _manage(manage_env, "add_upstream_credential", *second)
        time.sleep(1.5)  # the processes reload keys and credentials
        stop = threading.Event()
        ids: list[str] = []
        traffic = threading.Thread(target=_traffic, args=(cluster.url, key, stop, result, ids))
        started = time.monotonic()
        traffic.start()
        time.sleep(min(WARMUP_SECONDS, seconds / 4))
        start_rss = [_rss_mb(pid) for pid in cluster.gateway_pids]
        time.sleep(max(0.0, seconds / 2 - (time.monotonic() - started)))
        say("restarting the first gateway gracefully ...")  # type: ignore[operator]
        restart_began = time.monotonic()
        new_pid = _restart(state, cluster, gateway_env, 0)
        result.restart_seconds = time.monotonic() - restart_began
        time.sleep(max(0.0, seconds - (time.monotonic() - started)))
        end_rss = [_rss_mb(pid) for pid in cluster.gateway_pids]
        stop.set()
        traffic.join()
        result.rss_mb = {
            "gateway 1 (restarted; before / new process at the end)": (start_rss[0], end_rss[0]),
            "gateway 2": (start_rss[1], end_rss[1]),
        }
        deadline = time.monotonic() + 15
        while (rows := _rows(cluster.database_url, ids)) < len(ids) and time.monotonic() < deadline:
            time.sleep(0.2)
        result.log_rows = rows
        say(f"new gateway pid {new_pid}")  # type: ignore[operator]
    finally:
        topology.stop(state)
        simulator.stop()
        if result.errors:
            say(f"logs kept in {state} (nginx/logs/error.log, gateway-*.log)")  # type: ignore[operator]
        else:
            shutil.rmtree(state, ignore_errors=True)
    return result


def render_soak(result: SoakResult) -> str:
    served = result.requests - len(result.errors)
    lines = [
        f"Soak: {result.seconds:.0f} s, {WORKERS} clients through nginx, 2 gateways on PostgreSQL + Redis,",
        "  both surfaces, streaming and not, logging, limits and routing on; gateway 1 restarted midway",
        f"  requests: {result.requests}, client errors: {len(result.errors)}",
        f"  log rows: {result.log_rows} for {served} complete requests",
        f"  graceful restart took {result.restart_seconds:.1f} s (SIGTERM to the new process answering)",
    ]
    for name, (start, end) in result.rss_mb.items():
        lines.append(f"  RSS {name}: {start:.1f} MB -> {end:.1f} MB")
    lines += [f"  error: {error}" for error in result.errors[:10]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m proxy.bench.soak")
    parser.add_argument("--seconds", type=float, default=600.0)
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ccsite.settings")
    result = run_soak(max(20.0, min(args.seconds, 3600.0)))
    print(render_soak(result))
    served = result.requests - len(result.errors)
    return 0 if not result.errors and result.log_rows == served else 1


if __name__ == "__main__":
    sys.exit(main())
