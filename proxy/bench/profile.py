"""CPU profiles of the gateway during a benchmark run (``ccbench --profile DIR``).

py-spy (requirements-dev.txt) samples the pinned gateway process from the load generator's core
while one scenario runs, writing collapsed stacks to DIR/<scenario>.txt; ``top_costs`` turns
them into the functions that hold the most samples on their own (self) and with their callees
(inclusive), the figures the performance notes quote.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from proxy.bench.procs import pinned

SAMPLES_PER_SECOND = 250


def py_spy() -> str | None:
    """py-spy next to this interpreter (the venv, not necessarily on PATH), else on PATH."""
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


@contextmanager
def profiling(pid: int, out: Path, core: int | None) -> Iterator[None]:
    """Sample ``pid`` until the block ends; collapsed stacks land in ``out``."""
    exe = py_spy()
    if exe is None:
        yield
        return
    argv = [exe, "record", "--pid", str(pid), "--format", "raw", "--output", str(out)]
    argv += ["--rate", str(SAMPLES_PER_SECOND), "--nonblocking"]
    recorder = subprocess.Popen(
        pinned(argv, core), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        yield
    finally:
        recorder.send_signal(2)  # SIGINT: py-spy writes its file and exits
        try:
            recorder.wait(timeout=30)
        except subprocess.TimeoutExpired:
            recorder.kill()
            recorder.wait(timeout=10)


def _frames(stack: str) -> list[str]:
    # "fn (path/module.py:line);..." -> "module.py:fn", without the line: one entry per function.
    names = []
    for frame in stack.split(";"):
        name, _, where = frame.partition(" (")
        file = where.rsplit(":", 1)[0].rsplit("/", 2)
        names.append(f"{'/'.join(file[-2:])}:{name}")
    return names


def top_costs(
    collapsed: Path, count: int = 12
) -> tuple[int, list[tuple[str, float]], list[tuple[str, float]]]:
    """(samples, [(function, self share)], [(function, inclusive share)]) of the busy samples."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, samples = line.rpartition(" ")
        if not stack or not samples.isdigit():
            continue
        frames = _frames(stack)
        if not frames:
            continue
        weight = int(samples)
        total += weight
        own[frames[-1]] += weight
        for name in set(frames):
            inclusive[name] += weight
    if not total:
        return 0, [], []
    top_own = [(name, n / total) for name, n in own.most_common(count)]
    top_inclusive = [(name, n / total) for name, n in inclusive.most_common(count * 3)]
    return total, top_own, top_inclusive


def render_profile(scenario: str, collapsed: Path) -> list[str]:
    total, own, inclusive = top_costs(collapsed)
    lines = [f"profile of scenario {scenario} ({total:,} samples, {collapsed.name}): self"]
    lines += [f"  {share:6.1%}  {name}" for name, share in own]
    lines.append("  inclusive")
    lines += [f"  {share:6.1%}  {name}" for name, share in inclusive]
    return lines
