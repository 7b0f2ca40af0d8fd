"""Serving the simulator with uvicorn: in the foreground (``manage.py ccsimulator``) or in a thread."""

from __future__ import annotations

import socket
import threading
import time

import uvicorn

from proxy.upstream.simulator.app import Simulator, build_simulator
from proxy.upstream.simulator.config import SimConfig

# A stalled stream never ends by itself; on shutdown, cut open responses after this long.
GRACEFUL_SHUTDOWN_SECONDS = 1


def uvicorn_config(app: Simulator, *, host: str, port: int, log_level: str = "warning") -> uvicorn.Config:
    """httptools, no lifespan, no access log: the fastest plain-HTTP uvicorn set-up."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http="httptools",
        ws="none",
        lifespan="off",
        access_log=False,
        server_header=False,
        log_level=log_level,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )


def serve(app: Simulator, *, host: str, port: int, log_level: str = "warning") -> None:
    """Serve until SIGINT/SIGTERM (uvicorn's own handlers)."""
    uvicorn.Server(uvicorn_config(app, host=host, port=port, log_level=log_level)).run()


class SimulatorThread:
    """The simulator on 127.0.0.1 in a background thread; ``port=0`` takes a free port."""

    def __init__(self, config: SimConfig | None = None, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = build_simulator(config)
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Bound here, before the thread starts, so the port is known and cannot be taken.
        self._socket.bind((host, port))
        self.host, self.port = self._socket.getsockname()[:2]
        self._server = uvicorn.Server(uvicorn_config(self.app, host=self.host, port=self.port))
        self._thread = threading.Thread(target=self._run, name="ccsite-simulator", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _run(self) -> None:
        self._server.run(sockets=[self._socket])

    def start(self, timeout: float = 10.0) -> SimulatorThread:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the simulator did not start")
            time.sleep(0.01)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout)
        self._socket.close()

    def __enter__(self) -> SimulatorThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
