"""A whole benchmark run: a throwaway gateway database, the simulator, the gateway (Daphne, as
`make run` serves it, every operator feature on), optionally a peer proxy, and a load generator,
as separate processes on loopback, pinned to separate cores where taskset exists; every scenario
measured direct, through the gateway and through the peer, interleaved, repeated if asked."""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ccsite.serve import daphne_argv
from proxy.bench import scenarios as sc
from proxy.bench.procs import RssSampler, Server, free_port, pinned
from proxy.bench.profile import profiling
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
    # A peer proxy's folder (``node proxy.mjs``): measured as a second target in the same run.
    peer: Path | None = None
    # The gateway with its operator features off (no auth, no logging, no limits, one
    # credential), as a third target of the same interleaved runs.
    compare_features_off: bool = False
    repetitions: int = 1  # interleaved repetitions of every target per scenario
    # Profile the gateway with py-spy in one extra (uncounted) run per scenario; stacks land here.
    profile_dir: Path | None = None
    say: Callable[[str], None] = print


@dataclass
class Repetition:
    """One interleaved round of a scenario: every target, one after the other."""

    direct: RunFigures
    gateway: RunFigures
    peer: RunFigures | None = None
    features_off: RunFigures | None = None


@dataclass
class ScenarioResult:
    scenario: sc.Scenario
    direct: RunFigures
    gateway: RunFigures
    extra: dict[str, RunFigures] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)  # extra runs that did not complete
    repetitions: list[Repetition] = field(default_factory=list)


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


# High enough that nothing is refused: the run measures what checking and settling cost.
GENEROUS_LIMITS = ("--rpm", "100000000", "--tpm", "2000000000", "--concurrent", "100000")
GENEROUS_BUDGET = ("--budget-tokens", "1000000000000000", "--period", "month")
ROUTED_CREDENTIALS = 3  # the gateway routes over this many upstream credentials


def _new_key(env: dict[str, str], user: str) -> str:
    return _manage(env, "create_client_key", "--user", user, "--create-user").strip().splitlines()[-1]


def _prepare_database(env: dict[str, str], *, features: bool = True) -> str:
    """Migrate a fresh SQLite database; returns a client key. With ``features`` (how teams run
    it), the key and its user carry every limit and three credentials are routed over;
    without, one credential and a key with no limits."""
    _manage(env, "migrate", "--noinput", "-v", "0")
    key = _new_key(env, "bench")
    credentials = ROUTED_CREDENTIALS if features else 1
    for index in range(credentials):
        api_key = sc.UPSTREAM_KEY if index == 0 else f"{sc.UPSTREAM_KEY}_{index}"
        _manage(env, "add_upstream_credential", "--label", f"bench-{index + 1}", "--api-key", api_key)
    if features:
        _set_limits(env, "bench", key)
    return key


def _set_limits(env: dict[str, str], user: str, key: str) -> None:
    """Every limit on the user and on the key (per-user limits, issue 12)."""
    _manage(env, "user_limits", user, *GENEROUS_LIMITS, *GENEROUS_BUDGET)
    _manage(env, "client_keys", "limit", key[:16], *GENEROUS_LIMITS, *GENEROUS_BUDGET)


def _unlimited_key(env: dict[str, str]) -> str:
    """A second key with no limit on it or its user: the baseline of the limits comparison."""
    return _new_key(env, "bench-unlimited")


def _gateway(env: dict[str, str], simulator_url: str, **extra: str) -> Server:
    port = free_port()
    argv = daphne_argv("127.0.0.1", port)
    gateway_env = {**env, "CC_UPSTREAM_BASE_URL": simulator_url, **extra}
    return Server("gateway", pinned(argv, GATEWAY_CORE), port=port, env=gateway_env, cwd=PROJECT_ROOT)


def _peer(peer_dir: Path, simulator_url: str, workdir: Path) -> Server:
    """The peer proxy on a copy of its folder (it writes its config file when it starts)."""
    copy = workdir / "peer"
    shutil.copytree(peer_dir, copy)
    for path in (copy, *copy.rglob("*")):
        path.chmod(path.stat().st_mode | 0o200)
    port = free_port()
    env = {**os.environ, "PORT": str(port), "HOST": "127.0.0.1", "CC_API_BASE": simulator_url}
    argv = pinned(["node", "proxy.mjs"], GATEWAY_CORE)
    return Server("peer", argv, port=port, env=env, cwd=copy)


def peer_unavailable(peer_dir: Path) -> str | None:
    """Why the peer cannot run here, or None."""
    if shutil.which("node") is None:
        return "node is not installed: skipping the peer (install Node.js 18 or newer)"
    if not (peer_dir / "proxy.mjs").is_file():
        return f"no proxy.mjs in {peer_dir}: skipping the peer"
    return None


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
    server: Server,
    scenario: sc.Scenario,
    key: str,
    options: BenchOptions,
    label: str,
    request: tuple[str, dict[str, str], bytes, str] | None = None,
) -> RunFigures:
    idle_rss = server.rss_mb()
    cpu_before = server.cpu_seconds()
    with RssSampler(server) as sampler:
        result = run_load(server.port, request or sc.gateway_request(scenario, key), scenario, options)
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


@dataclass
class _Targets:
    """What every scenario is measured against, besides the simulator itself."""

    gateway: Server
    key: str
    peer: Server | None = None
    features_off: Server | None = None
    features_off_key: str = ""


def _measure_round(
    targets: _Targets, simulator: Server, scenario: sc.Scenario, options: BenchOptions
) -> Repetition:
    """Direct, the gateway, then the others: one interleaved round, each answer checked."""
    direct = measure_direct(simulator, scenario, options)
    gateway = measure_gateway(targets.gateway, scenario, targets.key, options, "gateway (features on)")
    rep = Repetition(direct, gateway)
    if targets.features_off is not None:
        rep.features_off = measure_gateway(
            targets.features_off, scenario, targets.features_off_key, options, "gateway (features off)"
        )
    if targets.peer is not None and scenario.surface in sc.PEER_SURFACES:
        rep.peer = measure_gateway(
            targets.peer, scenario, "", options, "peer", request=sc.peer_request(scenario)
        )
    return rep


def _scenario(
    targets: _Targets, simulator: Server, scenario: sc.Scenario, options: BenchOptions
) -> ScenarioResult:
    reps = []
    for index in range(max(1, options.repetitions)):
        if options.repetitions > 1:
            options.say(f"  repetition {index + 1} of {options.repetitions}")
        reps.append(_measure_round(targets, simulator, scenario, options))
    if options.profile_dir is not None:
        options.profile_dir.mkdir(parents=True, exist_ok=True)
        options.say(f"  profiling the gateway in one more run of {scenario.name}")
        out = options.profile_dir / f"{scenario.name}.txt"
        with profiling(targets.gateway.pid, out, LOAD_CORE):
            measure_gateway(targets.gateway, scenario, targets.key, options, "gateway (profiled)")
    return ScenarioResult(scenario, reps[0].direct, reps[0].gateway, repetitions=reps)


@contextmanager
def _optional(server: Server | None, ready_path: str) -> Iterator[Server | None]:
    if server is None:
        yield None
        return
    with running(server, ready_path) as started:
        yield started


def _features_off_gateway(tmp: Path, simulator_url: str, options: BenchOptions) -> tuple[Server | None, str]:
    """The gateway on a database of its own: one credential, no limits, no auth, no logging."""
    if not options.compare_features_off:
        return None, ""
    env = _child_env(tmp / "features-off")
    (tmp / "features-off").mkdir()
    key = _prepare_database(env, features=False)
    server = _gateway(env, simulator_url, CCSITE_AUTH_DISABLED="1", CCSITE_REQUEST_LOG="0")
    return server, key


def run_benchmark(options: BenchOptions) -> list[ScenarioResult]:
    chosen = [
        s
        for s in sc.standard_scenarios(options.duration, options.slow_concurrency)
        if not options.only or s.name in options.only or s.name[0] in options.only
    ]
    results: list[ScenarioResult] = []
    peer_dir = options.peer
    if peer_dir is not None and (reason := peer_unavailable(peer_dir)):
        options.say(reason)
        peer_dir = None
    with tempfile.TemporaryDirectory(prefix="ccsite-bench-") as tmp:
        env = _child_env(Path(tmp))
        options.say("preparing a fresh database, the simulator and the gateway (every feature on) ...")
        key = _prepare_database(env)
        with running(_simulator(env), "/_sim/health") as simulator:
            peer = _peer(peer_dir, simulator.url, Path(tmp)) if peer_dir is not None else None
            off, off_key = _features_off_gateway(Path(tmp), simulator.url, options)
            with (
                running(_gateway(env, simulator.url), "/health") as gateway,
                _optional(peer, "/") as peer_server,
                _optional(off, "/health") as off_server,
            ):
                targets = _Targets(gateway, key, peer_server, off_server, off_key)
                for scenario in chosen:
                    options.say(f"scenario {scenario.name}: {scenario.title}")
                    results.append(_scenario(targets, simulator, scenario, options))
                    if options.compare_limits and scenario.name == "d":
                        # Both runs on the warm gateway, one after the other: a same-run ratio.
                        options.say("scenario d again with the key that has every limit set, then without")
                        unlimited = _unlimited_key(env)
                        results[-1].extra["limits on"] = measure_gateway(
                            gateway, scenario, key, options, "gateway (limits on)"
                        )
                        results[-1].extra["limits off"] = measure_gateway(
                            gateway, scenario, unlimited, options, "gateway (limits off)"
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
