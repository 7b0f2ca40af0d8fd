"""What one round trip between the gateway's core and the load generator's core costs.

On a virtual machine, waking a process that sleeps on another core is slow (tens of µs per
wake-up), and the gateway path crosses cores twice per request (client -> gateway -> simulator)
where the direct path, with simulator and load generator sharing a core, crosses none. The
benchmark measures this round trip so its latency figures can be read against it.

``python -m proxy.bench.wakeup serve PORT`` echoes; ``... ping PORT`` prints the p50 in µs.
"""

from __future__ import annotations

import socket
import statistics
import sys
import time

ROUNDS, SKIP = 2000, 200


def serve(port: int) -> None:
    with socket.create_server(("127.0.0.1", port)) as server:
        connection, _ = server.accept()
        with connection:
            connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            while data := connection.recv(64):
                connection.sendall(data)


def ping(port: int) -> float:
    for _ in range(100):
        try:
            connection = socket.create_connection(("127.0.0.1", port), timeout=5)
            break
        except ConnectionRefusedError:
            time.sleep(0.02)
    else:
        raise RuntimeError("the echo side never listened")
    with connection:
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        times = []
        for _ in range(ROUNDS):
            started = time.perf_counter()
            connection.sendall(b"x")
            connection.recv(64)
            times.append(time.perf_counter() - started)
    return statistics.median(times[SKIP:]) * 1e6


if __name__ == "__main__":
    role, port = sys.argv[1], int(sys.argv[2])
    if role == "serve":
        serve(port)
    else:
        print(f"{ping(port):.1f}")
