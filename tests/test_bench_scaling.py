"""`manage.py ccbench --smoke --processes 1,2`: scenarios b and d through nginx in front of one
and two gateway processes, every answer exact."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.live import run_ccbench

ROW = re.compile(r"^([bd]): (\d) process(?:es)?\s+(\d+)\s+(\d+)\s", re.MULTILINE)

NO_NGINX = shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists()
pytestmark = [pytest.mark.live, pytest.mark.skipif(NO_NGINX, reason="nginx is not installed")]


def test_smoke_scaling_run_serves_through_nginx_with_one_and_two_processes(tmp_path):
    result = run_ccbench(tmp_path, "--smoke", "--processes", "1,2", without=["DATABASE_URL"])
    assert result.returncode == 0, result.stderr[-2000:]
    rows = ROW.findall(result.stdout)
    assert sorted((name, processes) for name, processes, _, _ in rows) == [
        ("b", "1"), ("b", "2"), ("d", "1"), ("d", "2"),
    ]  # fmt: skip
    assert all(int(errors) == 0 and int(ok) > 0 for *_, ok, errors in rows), result.stdout
    assert re.search(r"b: 2 processes / 1 process: [\d.]+x events/s", result.stdout)
    assert re.search(r"d: 2 processes / 1 process: [\d.]+x req/s", result.stdout)
