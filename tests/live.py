"""Real servers on loopback for tests: the benchmark's process control, with a ready path."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from ccsite.serve import daphne_argv
from proxy.bench.procs import Server, free_port

__all__ = ["LiveProcess", "RedisProcess", "daphne_process", "free_port", "run_ccbench", "simulator_process"]

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class LiveProcess(Server):
    """A child process serving HTTP on 127.0.0.1:port; stopped (only it) by its PID."""

    def __init__(self, name: str, argv: Sequence[str], *, port: int, env: Mapping[str, str], ready_path: str):
        super().__init__(name, argv, port=port, env={**os.environ, **env}, cwd=PROJECT_ROOT)
        self._ready_path = ready_path

    def start(self, ready_path: str | None = None, timeout: float = 30.0) -> LiveProcess:
        super().start(ready_path or self._ready_path, timeout)
        return self

    def __enter__(self) -> LiveProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def daphne_process(*, port: int, env: Mapping[str, str] | None = None) -> LiveProcess:
    """The gateway as `make run` serves it, on the test database."""
    argv = daphne_argv("127.0.0.1", port)
    base_env = {"DJANGO_SETTINGS_MODULE": "tests.settings", "CCSITE_USE_TEST_DB": "1"}
    return LiveProcess("gateway", argv, port=port, env={**base_env, **(env or {})}, ready_path="/health")


def simulator_process(*, port: int, args: Sequence[str] = ()) -> LiveProcess:
    """The Command Code simulator (`manage.py ccsimulator`) on loopback."""
    argv = [sys.executable, "manage.py", "ccsimulator", "--host", "127.0.0.1", "--port", str(port), *args]
    env = {"DJANGO_SETTINGS_MODULE": "tests.settings"}
    return LiveProcess("simulator", argv, port=port, env=env, ready_path="/_sim/health")


class RedisProcess:
    """A private ``redis-server`` on 127.0.0.1:port (no persistence); stopped by its PID."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 15.0) -> RedisProcess:
        binary = shutil.which("redis-server")
        if binary is None:
            raise FileNotFoundError("redis-server is not installed (apt-get install -y redis-server)")
        argv = [binary, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no"]
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited ({self.process.returncode})")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"redis-server did not start within {timeout}s")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)

    def __enter__(self) -> RedisProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def run_ccbench(
    data_dir: Path, *args: str, without: Sequence[str] = (), timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    """``manage.py ccbench *args`` on a throwaway data folder, with the project's own settings
    (no .env, DEBUG on) and the environment variables named in ``without`` left out."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "ccsite.settings", "CCSITE_ENV_FILE": "", "DEBUG": "1"}
    env["CCSITE_DATA_DIR"] = str(data_dir)
    for name in without:
        env.pop(name, None)
    return subprocess.run(
        [sys.executable, "manage.py", "ccbench", *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
