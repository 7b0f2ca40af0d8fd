"""A whole benchmark run: a throwaway gateway database, the simulator, the gateway (Daphne, as
`make run` serves it), and a load generator, as separate processes on loopback, pinned to
separate cores where taskset exists; every scenario measured direct and through the gateway."""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from proxy.bench import scenarios as sc
from proxy.bench.procs import RssSampler, Server, free_port, pinned
from proxy.bench.stats import RunFigures, figures

PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent
GATEWAY_CORE, LOAD_CORE = 0, 1  # the simulator shares the load generator's core


@dataclass
class BenchOptions:
    duration: float = 10.0
    slow_concurrency: tuple[int, ...] = (500,)
    only: tuple[str, ...] = ()  # scenario names; empty = all
    max_requests: int = 10**9  # per worker; the smoke run sets a handful
    compare_auth: bool = True  # run scenario b again with authentication switched off
    compare_limits: bool = True  # run scenario d again with a key that has every limit set
    # Run scenarios b and d again with request logging switched off (CCSITE_REQUEST_LOG=0).
    compare_logging: bool = True
    compare_aiohttp: bool = True  # run b, d and c500 again with aiohttp's upstream client
    say: Callable[[str], None] = print


@dataclass
class ScenarioResult:
    scenario: sc.Scenario
    direct: RunFigures
    gateway: RunFigures
    extra: dict[str, RunFigures] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)  # extra runs that did not complete


def _child_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "ccsite.settings",
        "CCSITE_ENV_FILE": "",
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(40),
        "CLIENT_KEY_PEPPER": secrets.token_urlsafe(24),
        "CREDENTIAL_ENCRYPTION_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
        "CCSITE_DATA_DIR": str(data_dir),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "LOG_LEVEL": "WARNING",
    }
    env.update(extra)
    return env


def _manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"manage.py {args[0]} failed: {result.stderr.strip()[-500:]}")
    return result.stdout


def _prepare_database(env: dict[str, str]) -> str:
    """Migrate a fresh SQLite database; returns a client key. The credential points upstream."""
    _manage(env, "migrate", "--noinput", "-v", "0")
    key = _manage(env, "create_client_key", "--user", "bench", "--create-user").strip().splitlines()[-1]
    _manage(env, "add_upstream_credential", "--label", "bench", "--api-key", sc.UPSTREAM_KEY)
    return key


# High enough that nothing is refused: the run measures what checking and settling cost.
GENEROUS_LIMITS = ("--rpm", "100000000", "--tpm", "2000000000", "--concurrent", "100000")
GENEROUS_BUDGET = ("--budget-tokens", "1000000000000000", "--period", "month")


def _limited_key(env: dict[str, str]) -> str:
    """A second key whose user and key both carry every limit (per-user limits, issue 12)."""
    key = (
        _manage(env, "create_client_key", "--user", "bench-limited", "--create-user").strip().splitlines()[-1]
    )
    _manage(env, "user_limits", "bench-limited", *GENEROUS_LIMITS, *GENEROUS_BUDGET)
    _manage(env, "client_keys", "limit", key[:16], *GENEROUS_LIMITS, *GENEROUS_BUDGET)
    return key


def _gateway(env: dict[str, str], simulator_url: str, **extra: str) -> Server:
    port = free_port()
    argv = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "ccsite.asgi:application"]
    gateway_env = {**env, "CC_UPSTREAM_BASE_URL": simulator_url, **extra}
    return Server("gateway", pinned(argv, GATEWAY_CORE), port=port, env=gateway_env, cwd=PROJECT_ROOT)


def _simulator(env: dict[str, str]) -> Server:
    port = free_port()
    argv = [sys.executable, "manage.py", "ccsimulator", "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--record-limit", "100"]
    return Server("simulator", pinned(argv, LOAD_CORE), port=port, env=env, cwd=PROJECT_ROOT)


def run_load(
    port: int, request: tuple[str, dict[str, str], bytes, str], scenario: sc.Scenario, options: BenchOptions
) -> dict[str, Any]:
    path, headers, body, reader = request
    spec = {
        "host": "127.0.0.1",
        "port": port,
        "path": path,
        "headers": headers,
        "body": body.decode(),
        "reader": reader,
        "expected_text": scenario.expected,
        "concurrency": scenario.concurrency,
        "duration": scenario.duration,
        "stagger": scenario.stagger,
        "max_requests": options.max_requests,
    }
    argv = pinned([sys.executable, "-m", "proxy.bench.loadgen"], LOAD_CORE)
    timeout = scenario.duration * 4 + 120
    result = subprocess.run(
        argv,
        cwd=PROJECT_ROOT,
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"load generator failed: {result.stderr.strip()[-1500:]}")
    return json.loads(result.stdout)


def _warmup_events(result: dict[str, Any]) -> int:
    return int(result.get("warmup_events", 0))


def measure_gateway(
    server: Server, scenario: sc.Scenario, key: str, options: BenchOptions, label: str
) -> RunFigures:
    idle_rss = server.rss_mb()
    cpu_before = server.cpu_seconds()
    with RssSampler(server) as sampler:
        result = run_load(server.port, sc.gateway_request(scenario, key), scenario, options)
    run = figures(label, result, _warmup_events(result))
    run.cpu_seconds = server.cpu_seconds() - cpu_before
    run.rss_peak_mb, run.rss_idle_mb = sampler.peak, idle_rss
    return run


def measure_direct(simulator: Server, scenario: sc.Scenario, options: BenchOptions) -> RunFigures:
    result = run_load(simulator.port, sc.direct_request(scenario), scenario, options)
    return figures("direct (simulator)", result, _warmup_events(result))


@contextmanager
def running(server: Server, ready_path: str) -> Iterator[Server]:
    server.start(ready_path)
    try:
        yield server
    finally:
        server.stop()


def cross_core_round_trip_us() -> float | None:
    """p50 of one loopback round trip between the gateway's and the load generator's cores."""
    port = free_port()
    echo = subprocess.Popen(
        pinned([sys.executable, "-m", "proxy.bench.wakeup", "serve", str(port)], GATEWAY_CORE),
        cwd=PROJECT_ROOT,
    )
    try:
        out = subprocess.run(
            pinned([sys.executable, "-m", "proxy.bench.wakeup", "ping", str(port)], LOAD_CORE),
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        return float(out.stdout) if out.returncode == 0 else None
    finally:
        echo.kill()
        echo.wait(timeout=10)


AIOHTTP_SCENARIOS = ("b", "d", "c500")


def _compare_aiohttp(
    env: dict[str, str], simulator: Server, key: str, results: list[ScenarioResult], options: BenchOptions
) -> None:
    """The relay scenarios again with aiohttp's client in place of ours (same run, same load)."""
    if not options.compare_aiohttp:
        return
    try:
        import aiohttp  # noqa: F401
    except ImportError:
        options.say("aiohttp is not installed: skipping the client comparison (pip install aiohttp)")
        return
    chosen = [r for r in results if r.scenario.name in AIOHTTP_SCENARIOS]
    if not chosen:
        return
    with running(_gateway(env, simulator.url, CC_UPSTREAM_CLIENT="aiohttp"), "/health") as gateway:
        for result in chosen:
            options.say(f"scenario {result.scenario.name} again with aiohttp's client")
            try:
                result.extra["aiohttp client"] = measure_gateway(
                    gateway, result.scenario, key, options, "gateway (aiohttp client)"
                )
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                # A run that never finishes is a result too (streams stalled): say so, go on.
                result.failures["aiohttp client"] = f"{type(exc).__name__}: {str(exc)[-300:]}"


def run_benchmark(options: BenchOptions) -> list[ScenarioResult]:
    chosen = [
        s
        for s in sc.standard_scenarios(options.duration, options.slow_concurrency)
        if not options.only or s.name in options.only or s.name[0] in options.only
    ]
    results: list[ScenarioResult] = []
    with tempfile.TemporaryDirectory(prefix="ccsite-bench-") as tmp:
        env = _child_env(Path(tmp))
        options.say("preparing a fresh database, the simulator and the gateway ...")
        key = _prepare_database(env)
        with running(_simulator(env), "/_sim/health") as simulator:
            with running(_gateway(env, simulator.url), "/health") as gateway:
                for scenario in chosen:
                    options.say(f"scenario {scenario.name}: {scenario.title}")
                    direct = measure_direct(simulator, scenario, options)
                    through = measure_gateway(gateway, scenario, key, options, "gateway (auth on)")
                    results.append(ScenarioResult(scenario, direct, through))
                    if options.compare_limits and scenario.name == "d":
                        # Both runs on the warm gateway, one after the other: a same-run ratio.
                        options.say("scenario d again with a key that has every limit set, then without")
                        limited = _limited_key(env)
                        results[-1].extra["limits on"] = measure_gateway(
                            gateway, scenario, limited, options, "gateway (limits on)"
                        )
                        results[-1].extra["limits off"] = measure_gateway(
                            gateway, scenario, key, options, "gateway (limits off)"
                        )
            _compare_aiohttp(env, simulator, key, results, options)
            if options.compare_auth and any(r.scenario.name == "b" for r in results):
                results_b = next(r for r in results if r.scenario.name == "b")
                with running(_gateway(env, simulator.url, CCSITE_AUTH_DISABLED="1"), "/health") as bare:
                    options.say("scenario b again with authentication switched off")
                    results_b.extra["auth off"] = measure_gateway(
                        bare, results_b.scenario, key, options, "gateway (auth off)"
                    )
            logged = [r for r in results if r.scenario.name in ("b", "d")]
            if options.compare_logging and logged:
                with running(_gateway(env, simulator.url, CCSITE_REQUEST_LOG="0"), "/health") as unlogged:
                    for result in logged:
                        name = result.scenario.name
                        options.say(f"scenario {name} again with request logging switched off")
                        result.extra["logging off"] = measure_gateway(
                            unlogged, result.scenario, key, options, "gateway (logging off)"
                        )
    return results
