"""Real servers on loopback for tests: free ports, start, wait until ready, stop by PID."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LiveProcess:
    """A child process serving HTTP on 127.0.0.1:port; stopped (only it) by its PID."""

    def __init__(self, argv: Sequence[str], *, port: int, env: Mapping[str, str], ready_path: str) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self._argv = list(argv)
        self._env = {**os.environ, **env}
        self._ready_path = ready_path
        self._log = None
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> LiveProcess:
        self._log = Path(os.devnull).open("wb")  # closed in stop()
        self.process = subprocess.Popen(
            self._argv, cwd=PROJECT_ROOT, env=self._env, stdout=self._log, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode(errors="replace") if self.process.stderr else ""
                raise RuntimeError(f"{self._argv[0]} exited early ({self.process.returncode}): {err[-2000:]}")
            try:
                httpx.get(self.url + self._ready_path, timeout=1.0)
                return self
            except httpx.TransportError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self._argv} did not answer on {self.url} within {timeout}s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if self.process is not None and self.process.stderr:
            self.process.stderr.close()
        if self._log is not None:
            self._log.close()

    def __enter__(self) -> LiveProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def daphne_process(*, port: int, env: Mapping[str, str] | None = None) -> LiveProcess:
    """The gateway as `make run` serves it, on the test database."""
    argv = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "ccsite.asgi:application"]
    base_env = {"DJANGO_SETTINGS_MODULE": "tests.settings", "CCSITE_USE_TEST_DB": "1"}
    return LiveProcess(argv, port=port, env={**base_env, **(env or {})}, ready_path="/health")


def simulator_process(*, port: int, args: Sequence[str] = ()) -> LiveProcess:
    """The Command Code simulator (`manage.py ccsimulator`) on loopback."""
    argv = [sys.executable, "manage.py", "ccsimulator", "--host", "127.0.0.1", "--port", str(port), *args]
    return LiveProcess(
        argv, port=port, env={"DJANGO_SETTINGS_MODULE": "tests.settings"}, ready_path="/_sim/health"
    )
