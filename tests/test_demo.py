"""`make demo` runs on its own database: after it, `make run`'s database holds no demo user,
key or credential pointing at a simulator that is gone."""

from __future__ import annotations

import os
import re
import shutil
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.live import PROJECT_ROOT, free_port

pytestmark = [pytest.mark.live]


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_demo_serves_from_its_own_database(tmp_path: Path) -> None:
    main_dir, demo_dir = tmp_path / "main", tmp_path / "demo"
    main_dir.mkdir()
    port, sim_port = free_port(), free_port()
    venv = Path(os.environ.get("VIRTUAL_ENV") or PROJECT_ROOT / ".venv")
    argv = [
        "make",
        "--no-print-directory",
        # Installed and configured already: never reinstall or write a .env from a test.
        "-o",
        ".env",
        "-o",
        f"{venv}/.runtime-installed",
        "demo",
        f"VENV={venv}",
        f"PORT={port}",
        f"SIM_PORT={sim_port}",
        f"DEMO_DATA_DIR={demo_dir}",
    ]
    # What `make run` would use: the demo must leave it alone.
    env = {**os.environ, "CCSITE_DATA_DIR": str(main_dir), "CCSITE_ENV_FILE": "", "DEBUG": "1"}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    with subprocess.Popen(  # on leaving: the pipe closed and make reaped, even on a failure
        argv,
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    ) as demo:
        try:
            key, banner = _demo_key(demo, deadline=time.monotonic() + 90)
            response = httpx.post(
                f"http://127.0.0.1:{port}/v1/chat/completions",
                headers={"Authorization": f"Bearer {key}"},
                json={"model": "deepseek/deepseek-v4-flash", "messages": [{"role": "user", "content": "hi"}]},
                timeout=30,
            )
            assert response.status_code == 200, response.text
        finally:
            _stop(demo)
    # The printed way to make the first admin writes to the demo's database too.
    command = re.search(r"first admin: (.+ createsuperuser)$", banner, re.MULTILINE)
    assert command is not None, banner
    assert f"CCSITE_DATA_DIR={demo_dir}" in command.group(1)
    created = subprocess.run(
        f"{command.group(1)} --noinput --username boss --email boss@example.com",
        shell=True,
        cwd=PROJECT_ROOT,
        env={**env, "DJANGO_SUPERUSER_PASSWORD": "a-long-demo-password-1"},
        capture_output=True,
        timeout=120,
    )
    assert created.returncode == 0, created.stderr.decode()
    assert not (main_dir / "ccsite.sqlite3").exists()
    with sqlite3.connect(demo_dir / "ccsite.sqlite3") as db:
        labels = [row[0] for row in db.execute("SELECT label FROM accounts_upstreamcredential")]
        admins = [row[0] for row in db.execute("SELECT username FROM accounts_user WHERE is_superuser")]
    assert labels == ["demo-simulator"]
    assert admins == ["boss"]


def _stop(demo: subprocess.Popen[bytes]) -> None:
    """Interrupt our own session (make, ccdemo and its two servers); kill it if it lingers."""
    try:
        os.killpg(demo.pid, signal.SIGINT)
    except ProcessLookupError:  # every process of the session has exited already (make failed)
        pass
    try:
        demo.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(demo.pid, signal.SIGKILL)
        demo.wait(timeout=10)


def _demo_key(demo: subprocess.Popen[bytes], deadline: float) -> tuple[str, str]:
    """The demo's client key, and its output up to there."""
    assert demo.stdout is not None
    seen = []
    while time.monotonic() < deadline:
        line = demo.stdout.readline().decode()
        if not line and demo.poll() is not None:
            break
        seen.append(line)
        found = re.search(r"client key \(shown once\): (\S+)", line)
        if found:
            return found.group(1), "".join(seen)
    raise AssertionError("the demo never printed its key:\n" + "".join(seen[-30:]))
