"""Real servers on loopback for tests: the benchmark's process control, with a ready path."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from proxy.bench.procs import Server, free_port

__all__ = ["LiveProcess", "daphne_process", "free_port", "simulator_process"]

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
    argv = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "ccsite.asgi:application"]
    base_env = {"DJANGO_SETTINGS_MODULE": "tests.settings", "CCSITE_USE_TEST_DB": "1"}
    return LiveProcess("gateway", argv, port=port, env={**base_env, **(env or {})}, ready_path="/health")


def simulator_process(*, port: int, args: Sequence[str] = ()) -> LiveProcess:
    """The Command Code simulator (`manage.py ccsimulator`) on loopback."""
    argv = [sys.executable, "manage.py", "ccsimulator", "--host", "127.0.0.1", "--port", str(port), *args]
    env = {"DJANGO_SETTINGS_MODULE": "tests.settings"}
    return LiveProcess("simulator", argv, port=port, env=env, ready_path="/_sim/health")
