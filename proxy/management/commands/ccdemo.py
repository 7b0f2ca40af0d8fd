"""`make demo`: the simulator and the gateway side by side, a demo key, and a curl line to try.

Both servers are child processes on loopback; Ctrl-C (or SIGTERM) stops exactly those two,
by PID. Re-running is safe: the demo user and the upstream credential are reused, and the
previous demo client key is revoked before a new one is shown (a secret is shown only once).
"""

from __future__ import annotations

import logging
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.models import ClientKey, UpstreamCredential
from accounts.services import client_key_create, client_key_revoke, credential_add, user_get_or_create
from ccsite.serve import daphne_argv

LOOPBACK = "127.0.0.1"
DEMO_KEY_NAME = "demo"
DEMO_CREDENTIAL_LABEL = "demo-simulator"
# Any user_ key passes the simulator's auth (protocol §2); this one is not a real secret.
DEMO_UPSTREAM_KEY = "user_demo_simulator_key"
READY_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    ready_url: str

    def stop(self) -> None:
        """SIGTERM this child (by PID), then SIGKILL if it does not exit in time."""
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=STOP_TIMEOUT)


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex((LOOPBACK, port)) != 0


def _wait_ready(child: Child, deadline: float) -> None:
    while time.monotonic() < deadline:
        if child.process.poll() is not None:
            raise CommandError(f"{child.name} exited early (status {child.process.returncode})")
        try:
            httpx.get(child.ready_url, timeout=1.0)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise CommandError(f"{child.name} did not answer on {child.ready_url} within {READY_TIMEOUT:.0f}s")


def _demo_key(username: str) -> str:
    user, _ = user_get_or_create(username=username)
    for key in ClientKey.objects.filter(user=user, name=DEMO_KEY_NAME, revoked=False):
        client_key_revoke(key=key)
    _, secret = client_key_create(user=user, name=DEMO_KEY_NAME)
    return secret


def _demo_credential() -> None:
    if not UpstreamCredential.objects.filter(label=DEMO_CREDENTIAL_LABEL).exists():
        credential_add(label=DEMO_CREDENTIAL_LABEL, api_key=DEMO_UPSTREAM_KEY)


def _demo_manage() -> str:
    """`manage.py` as a shell command on the demo's database (its data dir, not `make run`'s)."""
    data_dir = f"CCSITE_DATA_DIR={shlex.quote(str(settings.DATA_DIR))}"
    # `make demo` empties DATABASE_URL so a .env's PostgreSQL is not used; keep one set here.
    database = "" if os.environ.get("DATABASE_URL") else " DATABASE_URL="
    return f"{data_dir}{database} {shlex.quote(os.path.relpath(sys.executable))} manage.py"


def _stop_on_signals() -> None:
    """Ctrl-C and SIGTERM both end the demo through the same cleanup.

    SIGINT is set explicitly: a shell starting us in the background leaves it ignored.
    """

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)


class Command(BaseCommand):
    help = "Run the simulator and the gateway together with a demo user, key and credential."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default=LOOPBACK, help="gateway address (loopback only)")
        parser.add_argument("--port", type=int, default=8000, help="gateway port")
        parser.add_argument("--sim-port", type=int, default=9100, help="simulator port")
        parser.add_argument("--daphne", default=None, help="daphne executable (default: Daphne on uvloop)")
        parser.add_argument("--user", default="demo", help="demo user name")

    def handle(self, *args: Any, **options: Any) -> None:
        logging.getLogger("httpx").setLevel(logging.WARNING)  # no log line per readiness poll
        host, port, sim_port = options["host"], options["port"], options["sim_port"]
        if host not in (LOOPBACK, "localhost"):
            raise CommandError("the demo binds loopback only: use --host 127.0.0.1")
        for busy in (port, sim_port):
            if not _port_is_free(busy):
                raise CommandError(f"port {busy} is in use (set PORT=... or SIM_PORT=...)")
        secret = _demo_key(options["user"])
        _demo_credential()
        _stop_on_signals()
        children = self._start(host, port, sim_port, options["daphne"])
        try:
            deadline = time.monotonic() + READY_TIMEOUT
            for child in children:
                _wait_ready(child, deadline)
            self._print_banner(f"http://{host}:{port}", f"http://{LOOPBACK}:{sim_port}", secret)
            self._wait(children)
        except KeyboardInterrupt:
            self.stdout.write("\nStopping the demo...")
        finally:
            for child in reversed(children):
                child.stop()

    def _start(self, host: str, port: int, sim_port: int, daphne: str | None) -> list[Child]:
        manage = str(Path(settings.BASE_DIR) / "manage.py")
        sim_argv = [sys.executable, manage, "ccsimulator", "--host", LOOPBACK, "--port", str(sim_port)]
        gateway_argv = daphne_argv(host, port)
        if daphne:  # a given Daphne executable runs on its stock loop
            gateway_argv = [daphne, *gateway_argv[3:]]
        env = {**os.environ, "CC_UPSTREAM_BASE_URL": f"http://{LOOPBACK}:{sim_port}"}
        children = [
            Child(
                "simulator", subprocess.Popen(sim_argv, env=env), f"http://{LOOPBACK}:{sim_port}/_sim/health"
            )
        ]
        try:
            children.append(
                Child("gateway", subprocess.Popen(gateway_argv, env=env), f"http://{host}:{port}/health")
            )
        except OSError as exc:
            children[0].stop()
            raise CommandError(f"cannot start daphne: {exc}") from None
        return children

    def _wait(self, children: list[Child]) -> None:
        while all(child.process.poll() is None for child in children):
            time.sleep(0.5)
        gone = next(child for child in children if child.process.poll() is not None)
        raise CommandError(f"{gone.name} stopped (status {gone.process.returncode}); stopping the demo")

    def _print_banner(self, url: str, sim_url: str, secret: str) -> None:
        body = (
            '{"model": "deepseek/deepseek-v4-flash", "stream": true, '
            '"messages": [{"role": "user", "content": "Hi [sim:paced deltas=12 delay_ms=150]"}]}'
        )
        lines = [
            "",
            "ccsite demo is running (Ctrl-C stops both servers).",
            f"  gateway:   {url}/   (upstream: the simulator at {sim_url})",
            f"  admin:     {url}/admin/",
            f"  first admin: {_demo_manage()} createsuperuser",
            f"  client key (shown once): {secret}",
            "",
            "Try it:",
            f"  curl -N {url}/v1/chat/completions \\",
            f'    -H "Authorization: Bearer {secret}" -H "Content-Type: application/json" \\',
            f"    -d '{body}'",
            "",
            "Other simulator behaviours: put [sim:reasoning], [sim:tool-call], [sim:http-429] ... in",
            "the message (proxy/upstream/simulator/app.py lists them all).",
            f"What the simulator received: {sim_url}/_sim/requests",
            "",
        ]
        self.stdout.write("\n".join(lines))
        self.stdout.flush()
