"""``python -m ccsite.serve`` is Daphne's own command line (on uvloop), named as it is run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _serve(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ccsite.serve", *args], cwd=ROOT, capture_output=True, text=True, timeout=60
    )


def test_help_is_daphnes_help_under_the_command_a_user_typed():
    result = _serve("--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: python -m ccsite.serve ")
    for option in ("--bind HOST", "--port PORT", "--access-log ACCESS_LOG", "--verbosity VERBOSITY"):
        assert option in result.stdout
    assert "serve.py" not in result.stdout


def test_a_bad_argument_is_refused_by_daphnes_parser():
    result = _serve("-p", "not-a-port", "ccsite.asgi:application")
    assert result.returncode == 2
    assert "python -m ccsite.serve: error: argument -p/--port: invalid int value" in result.stderr
