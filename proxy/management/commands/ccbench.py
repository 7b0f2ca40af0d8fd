"""Benchmark the gateway against the direct path to the simulator (`make bench`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from proxy.bench.profile import render_profile
from proxy.bench.report import render
from proxy.bench.runner import BenchOptions, cross_core_round_trip_us, run_benchmark
from proxy.bench.scaling import render_scaling, run_scaling


class Command(BaseCommand):
    help = "Run the benchmark scenarios direct and through a live gateway; print the table."
    requires_system_checks: list[str] = []
    requires_migrations_checks = False

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--duration", type=float, default=10.0, help="seconds of load per run")
        parser.add_argument(
            "--slow", default="500", help="concurrency of the slow-stream runs, e.g. 500,1000"
        )
        parser.add_argument("--only", default="", help="scenario letters to run, e.g. a,b")
        parser.add_argument("--smoke", action="store_true", help="a few requests per scenario (for tests)")
        parser.add_argument("--no-auth-compare", action="store_true", help="skip the auth-off rerun of b")
        parser.add_argument("--no-limits-compare", action="store_true", help="skip the limits-on rerun of d")
        parser.add_argument(
            "--no-logging-compare", action="store_true", help="skip the request-logging-off reruns of b and d"
        )
        parser.add_argument(
            "--no-aiohttp-compare", action="store_true", help="skip the aiohttp-client reruns of b, d, c500"
        )
        parser.add_argument(
            "--peer", default="", help="a peer proxy's folder (node proxy.mjs), measured in the same run"
        )
        parser.add_argument(
            "--repeat", type=int, default=1, help="interleaved repetitions of every target per scenario"
        )
        parser.add_argument(
            "--features-off",
            action="store_true",
            help="also measure the gateway with auth, logging, limits off and one credential",
        )
        parser.add_argument(
            "--profile", default="", help="profile the gateway (py-spy) per scenario into this folder"
        )
        parser.add_argument(
            "--processes",
            default="",
            help="instead: scenarios b and d through nginx with these numbers of gateway processes, e.g. 1,2",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        bench = BenchOptions(
            duration=options["duration"],
            slow_concurrency=tuple(int(part) for part in options["slow"].split(",") if part),
            only=tuple(part for part in options["only"].split(",") if part),
            compare_auth=not options["no_auth_compare"],
            compare_limits=not options["no_limits_compare"],
            compare_logging=not options["no_logging_compare"],
            compare_aiohttp=not options["no_aiohttp_compare"],
            peer=Path(options["peer"]).resolve() if options["peer"] else None,
            compare_features_off=options["features_off"],
            repetitions=options["repeat"],
            profile_dir=Path(options["profile"]).resolve() if options["profile"] else None,
            say=lambda line: self.stderr.write(line),
        )
        if options["smoke"]:
            bench.duration, bench.max_requests, bench.slow_concurrency = 0.5, 3, (8,)
        if options["processes"]:
            counts = tuple(int(part) for part in options["processes"].split(",") if part)
            self.stdout.write(render_scaling(run_scaling(bench, counts)))
            return
        results = run_benchmark(bench)
        self.stdout.write(render(results, round_trip_us=cross_core_round_trip_us()))
        if bench.profile_dir is not None:
            for result in results:
                collapsed = bench.profile_dir / f"{result.scenario.name}.txt"
                if collapsed.exists():
                    self.stdout.write("\n".join(render_profile(result.scenario.name, collapsed)) + "\n")
