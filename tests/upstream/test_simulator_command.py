"""`manage.py ccsimulator`: flags and a config file reach the served app; it stops on SIGTERM."""

from __future__ import annotations

import json
import socket
import time

import httpx
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from tests.live import free_port, simulator_process
from tests.upstream.test_simulator import envelope, headers, parse_stream

pytestmark = pytest.mark.live


def test_command_serves_the_simulator_with_flag_and_file_keys(tmp_path):
    config = tmp_path / "sim.json"
    config.write_text(json.dumps({"keys": {"user_flaky": {"fail_first": 1, "fail_with": "http-529"}}}))

    args = ["--config", str(config), "--key", "user_bad=http-401"]
    with simulator_process(port=free_port(), args=args) as sim:
        ok = httpx.post(f"{sim.url}/alpha/generate", json=envelope(), headers=headers())
        bad = httpx.post(f"{sim.url}/alpha/generate", json=envelope(), headers=headers("user_bad"))
        flaky = [
            httpx.post(
                f"{sim.url}/alpha/generate", json=envelope(), headers=headers("user_flaky")
            ).status_code
            for _ in range(2)
        ]
        recorded = httpx.get(f"{sim.url}/_sim/requests", params={"bodies": "0"}).json()

    assert ok.status_code == 200 and parse_stream(ok.content)[-2]["type"] == "finish"
    assert bad.status_code == 401
    assert flaky == [529, 200]
    assert recorded["total_seen"] == 4


def test_command_stops_promptly_on_sigterm_with_a_stalled_stream_open():
    sim = simulator_process(port=free_port()).start()
    try:
        body = json.dumps(envelope("[sim:stall]")).encode()
        request = (
            f"POST /alpha/generate HTTP/1.1\r\nhost: x\r\nauthorization: Bearer user_a\r\n"
            f"content-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
        ).encode()
        with socket.create_connection(("127.0.0.1", sim.port)) as raw:
            raw.sendall(request + body)
            assert raw.recv(65536).startswith(b"HTTP/1.1 200")
            started = time.monotonic()
            sim.stop()
            assert time.monotonic() - started < 5
    finally:
        sim.stop()
    assert sim.process is not None and sim.process.returncode is not None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--key", "user_x"], "KEY=SCENARIO"),
        (["--key", "user_x=nonsense"], "unknown simulator scenario"),
        (["--default-scenario", "nope"], "unknown simulator scenario"),
    ],
)
def test_command_rejects_bad_flags_before_serving(args, message):
    with pytest.raises(CommandError, match=message):
        call_command("ccsimulator", *args)
