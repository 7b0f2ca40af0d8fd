"""`make cluster`: the several-process topology on one machine, all on loopback.

PostgreSQL and Redis (Debian's packages, ccsite.localservices), migrations, N Daphne gateway
processes sharing them, and nginx in front with the site config of deploy/nginx. State (the
database files, logs, PIDs) lives in one folder, ``var/cluster`` by default; ``cluster-stop``
stops every process it started, by PID, gateways first (gracefully: open streams finish).

    python -m ccsite.cluster start --host 127.0.0.1 --port 8000 --processes 2
    python -m ccsite.cluster stop
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx

from ccsite.localservices import (
    INSTALL_HINT,
    MissingServer,
    Postgres,
    Redis,
    free_port,
    stop_pidfile,
    wait_for_port,
)
from ccsite.serve import daphne_argv

PROJECT_ROOT = Path(__file__).resolve().parent.parent
NGINX_SITE = PROJECT_ROOT / "deploy" / "nginx" / "ccsite.conf"
STATE_FILE = "cluster.json"
# Gateways this interpreter started, so it can wait for (reap) them when it stops them.
_children: dict[int, subprocess.Popen[bytes]] = {}


@dataclass
class Cluster:
    url: str
    database_url: str
    redis_url: str
    gateway_ports: list[int] = field(default_factory=list)
    gateway_pids: list[int] = field(default_factory=list)


def nginx_binary() -> str:
    found = shutil.which("nginx") or next(
        (path for path in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(path).exists()), None
    )
    if not found:
        raise MissingServer(f"nginx is not installed; {INSTALL_HINT}")
    return found


def render_nginx(root: Path, *, host: str, port: int, gateway_ports: list[int]) -> Path:
    """A complete nginx.conf in ``root`` serving deploy/nginx/ccsite.conf on host:port.

    The site file is used as shipped except its ``listen`` line; the upstream lists the
    gateway ports. Temporary files, logs and the PID stay in ``root``.
    """
    for sub in ("logs", "tmp"):
        (root / sub).mkdir(parents=True, exist_ok=True)
        # nginx workers run as nobody when started as root; they write request bodies here.
        (root / sub).chmod(0o777)
    site, count = re.subn(r"(?m)^(\s*)listen 80;", rf"\1listen {host}:{port};", NGINX_SITE.read_text())
    if count != 1:
        raise RuntimeError(f"{NGINX_SITE.name} must have exactly one `listen 80;` line")
    (root / "ccsite.conf").write_text(site)
    servers = "".join(f"    server 127.0.0.1:{p} max_fails=1 fail_timeout=5s;\n" for p in gateway_ports)
    (root / "ccsite-upstream.conf").write_text(
        f"upstream ccsite_gateways {{\n    least_conn;\n{servers}"
        "    keepalive 64;\n    keepalive_timeout 4s;\n}\n"
    )
    conf = root / "nginx.conf"
    conf.write_text(
        f"""worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/logs/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log {root}/logs/access.log;
    client_body_temp_path {root}/tmp/body;
    proxy_temp_path {root}/tmp/proxy;
    fastcgi_temp_path {root}/tmp/fastcgi;
    uwsgi_temp_path {root}/tmp/uwsgi;
    scgi_temp_path {root}/tmp/scgi;
    include {root}/ccsite-upstream.conf;
    include {root}/ccsite.conf;
}}
"""
    )
    return conf


def check_nginx(conf: Path) -> subprocess.CompletedProcess[str]:
    """``nginx -t`` on a rendered configuration."""
    return subprocess.run(
        [nginx_binary(), "-t", "-q", "-p", str(conf.parent), "-c", str(conf)], capture_output=True, text=True
    )


def _python() -> str:
    return sys.executable


def start(state: Path, *, host: str, port: int, processes: int, env: dict[str, str] | None = None) -> Cluster:
    """Start everything; on any failure, stop what was started and raise."""
    state.mkdir(parents=True, exist_ok=True)
    if (state / STATE_FILE).exists():
        raise RuntimeError(f"a cluster is already running from {state} (make cluster-stop)")
    nginx = nginx_binary()  # fail before starting anything when a piece is missing
    try:
        postgres = Postgres(state / "postgres", free_port()).start()
        redis = Redis(state / "redis", free_port()).start()
        cluster = Cluster(url=f"http://{host}:{port}/", database_url=postgres.url, redis_url=redis.url)
        _save(state, cluster)
        metrics_dir = state / "metrics"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir()
        gateway_env = {
            **os.environ,
            **(env or {}),
            "DATABASE_URL": postgres.url,
            "REDIS_URL": redis.url,
            "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        }
        subprocess.run(
            [_python(), "manage.py", "migrate", "--noinput", "-v", "0"],
            cwd=PROJECT_ROOT,
            env=gateway_env,
            check=True,
        )
        for _ in range(processes):
            gateway_port = free_port()
            argv = daphne_argv("127.0.0.1", gateway_port, python=_python())
            with (state / f"gateway-{gateway_port}.log").open("ab") as log:
                process = subprocess.Popen(
                    argv,
                    cwd=PROJECT_ROOT,
                    env=gateway_env,
                    stdout=log,
                    stderr=log,
                    start_new_session=True,
                )
            _children[process.pid] = process
            cluster.gateway_ports.append(gateway_port)
            cluster.gateway_pids.append(process.pid)
            _save(state, cluster)
        for gateway_port in cluster.gateway_ports:
            _wait_healthy(f"http://127.0.0.1:{gateway_port}/health")
        conf = render_nginx(state / "nginx", host=host, port=port, gateway_ports=cluster.gateway_ports)
        subprocess.run([nginx, "-p", str(conf.parent), "-c", str(conf)], check=True)
        wait_for_port(port, "nginx", host=host)
        return cluster
    except BaseException:
        stop(state)
        raise


def _wait_healthy(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer 200 within {timeout}s")


def _save(state: Path, cluster: Cluster) -> None:
    (state / STATE_FILE).write_text(json.dumps(asdict(cluster)))


def stop(state: Path, grace_seconds: float = 40.0) -> None:
    """Stop what ``start`` started from ``state``: gateways (SIGTERM, graceful), nginx, Redis,
    PostgreSQL. Safe to run twice."""
    record = state / STATE_FILE
    cluster = Cluster(**json.loads(record.read_text())) if record.exists() else None
    if cluster:
        for pid in cluster.gateway_pids:
            child = _children.pop(pid, None)
            if child is None:  # started by another `make cluster` run
                pidfile = state / f"gateway-{pid}.pid"
                pidfile.write_text(str(pid))
                stop_pidfile(pidfile, timeout=grace_seconds)
                continue
            child.terminate()
            try:
                child.wait(grace_seconds)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
    stop_pidfile(state / "nginx" / "nginx.pid")
    Redis(state / "redis", 0).stop()
    Postgres(state / "postgres", 0).stop()
    record.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ccsite.cluster")
    parser.add_argument("command", choices=("start", "stop"))
    parser.add_argument("--state", type=Path, default=PROJECT_ROOT / "var" / "cluster")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--processes", type=int, default=2)
    args = parser.parse_args(argv)
    if args.command == "stop":
        stop(args.state)
        print("cluster stopped")
        return 0
    try:
        cluster = start(args.state, host=args.host, port=args.port, processes=max(1, args.processes))
    except MissingServer as exc:
        print(exc, file=sys.stderr)
        return 2
    print(f"\nccsite cluster: {len(cluster.gateway_pids)} gateway processes behind nginx on {cluster.url}")
    print(f"  health:   {cluster.url}health (the pid shows which process answered)")
    print(f"  database: {cluster.database_url}\n  redis:    {cluster.redis_url}")
    print(f"  logs:     {args.state}/\n  stop:     make cluster-stop\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
