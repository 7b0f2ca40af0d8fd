"""`make bench BENCH_ARGS="--processes 1,2"`: scenarios b and d through nginx in front of 1, 2, ...
gateway processes (the `make cluster` site config), to measure how the gateway scales with
processes. The simulator and the load generator keep their core; the gateways are not pinned
(with 2 processes on a 2-core machine they share both cores with everything else, so the ratio
is a lower bound of what separate cores give)."""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ccsite.cluster import nginx_binary, render_nginx
from ccsite.localservices import stop_pidfile, wait_for_port
from ccsite.serve import daphne_argv
from proxy.bench import scenarios as sc
from proxy.bench.procs import Server, free_port
from proxy.bench.runner import (
    PROJECT_ROOT,
    BenchOptions,
    _child_env,
    _prepare_database,
    _simulator,
    run_load,
    running,
)
from proxy.bench.stats import HEADER, RunFigures, figures, row

SCALING_SCENARIOS = ("b", "d")


@dataclass
class ScalingResult:
    scenario: sc.Scenario
    processes: int
    run: RunFigures


def _gateways(env: dict[str, str], simulator_url: str, count: int) -> list[Server]:
    servers = []
    for _ in range(count):
        port = free_port()
        argv = daphne_argv("127.0.0.1", port)
        gateway_env = {**env, "CC_UPSTREAM_BASE_URL": simulator_url}
        servers.append(Server("gateway", argv, port=port, env=gateway_env, cwd=PROJECT_ROOT))
    return servers


def _measure(nginx_port: int, gateways: list[Server], scenario: sc.Scenario, key: str, options: BenchOptions):
    cpu_before = sum(g.cpu_seconds() for g in gateways)
    result = run_load(nginx_port, sc.gateway_request(scenario, key), scenario, options)
    label = f"{scenario.name}: {len(gateways)} process{'es' if len(gateways) > 1 else ''}"
    run = figures(label, result, int(result.get("warmup_events", 0)))
    run.cpu_seconds = sum(g.cpu_seconds() for g in gateways) - cpu_before
    return run


def run_scaling(options: BenchOptions, process_counts: tuple[int, ...]) -> list[ScalingResult]:
    chosen = [s for s in sc.standard_scenarios(options.duration, ()) if s.name in SCALING_SCENARIOS]
    nginx = nginx_binary()
    results: list[ScalingResult] = []
    with tempfile.TemporaryDirectory(prefix="ccsite-bench-") as tmp:
        env = _child_env(Path(tmp))
        options.say("preparing a fresh database and the simulator ...")
        key = _prepare_database(env)
        with running(_simulator(env), "/_sim/health") as simulator:
            for count in process_counts:
                options.say(f"{count} gateway process(es) behind nginx ...")
                gateways = _gateways(env, simulator.url, count)
                nginx_root = Path(tmp) / f"nginx-{count}"
                try:
                    for gateway in gateways:
                        gateway.start("/health")
                    port = free_port()
                    conf = render_nginx(
                        nginx_root, host="127.0.0.1", port=port, gateway_ports=[g.port for g in gateways]
                    )
                    subprocess.run([nginx, "-p", str(nginx_root), "-c", str(conf)], check=True)
                    wait_for_port(port, "nginx")
                    for scenario in chosen:
                        options.say(f"  scenario {scenario.name}: {scenario.title}")
                        results.append(
                            ScalingResult(scenario, count, _measure(port, gateways, scenario, key, options))
                        )
                finally:
                    stop_pidfile(nginx_root / "nginx.pid")
                    for gateway in gateways:
                        gateway.stop()
    return results


def render_scaling(results: list[ScalingResult]) -> str:
    lines = ["Through nginx, by number of gateway processes (same run):", HEADER]
    for result in results:
        lines.append(row(result.run))
    for name in SCALING_SCENARIOS:
        by_count = {r.processes: r for r in results if r.scenario.name == name}
        if 1 not in by_count:
            continue
        base = by_count[1].run
        for count, result in sorted(by_count.items()):
            if count == 1:
                continue
            if result.scenario.streaming:
                unit, ratio = "events/s", result.run.events_per_second / (base.events_per_second or 1)
            else:
                unit, ratio = "req/s", result.run.requests_per_second / (base.requests_per_second or 1)
            lines.append(f"  {name}: {count} processes / 1 process: {ratio:.2f}x {unit}")
    return "\n".join(lines)
