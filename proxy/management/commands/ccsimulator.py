"""Serve the Command Code upstream simulator (proxy/upstream/simulator/app.py) with uvicorn."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from proxy.upstream.simulator.app import build_simulator
from proxy.upstream.simulator.config import (
    ConfigError,
    SimConfig,
    check_selection,
    key_behaviour,
    load_config,
)
from proxy.upstream.simulator.server import serve


def _key_flag(value: str) -> tuple[str, str]:
    key, sep, scenario = value.partition("=")
    if not sep or not key or not scenario:
        raise CommandError(f"--key expects KEY=SCENARIO (e.g. user_bad=http-401), got {value!r}")
    return key, scenario


class Command(BaseCommand):
    help = "Serve the Command Code simulator (POST /alpha/generate and friends) on HOST:PORT."
    requires_system_checks: list[str] = []
    requires_migrations_checks = False

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=9100)
        parser.add_argument("--config", type=Path, help="JSON file: keys, default_scenario, limits")
        parser.add_argument(
            "--key",
            action="append",
            default=[],
            metavar="KEY=SCENARIO",
            help="force a scenario for one API key (repeatable), e.g. user_bad=http-401",
        )
        parser.add_argument("--default-scenario", help="scenario when nothing else selects one")
        parser.add_argument("--reject-unknown-keys", action="store_true", help="401 for unlisted keys")
        parser.add_argument("--record-limit", type=int, help="requests kept for GET /_sim/requests")
        parser.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"])

    def _config(self, options: dict[str, Any]) -> SimConfig:
        try:
            config = load_config(options["config"]) if options["config"] else SimConfig()
            keys = dict(config.keys)
            for key, scenario in map(_key_flag, options["key"]):
                keys[key] = key_behaviour({"scenario": scenario}, f"--key {key[:8]}...")
            if options["default_scenario"]:
                default = check_selection(options["default_scenario"], "--default-scenario")
                config = replace(config, default_scenario=default)
        except ConfigError as exc:
            raise CommandError(str(exc)) from None
        config = replace(config, keys=keys)
        if options["reject_unknown_keys"]:
            config = replace(config, accept_unknown_keys=False)
        if options["record_limit"]:
            config = replace(config, record_limit=options["record_limit"])
        return config

    def handle(self, *args: Any, **options: Any) -> None:
        app = build_simulator(self._config(options))
        host, port = options["host"], options["port"]
        self.stdout.write(f"Command Code simulator on http://{host}:{port} (Ctrl-C stops it)")
        self.stdout.flush()
        serve(app, host=host, port=port, log_level=options["log_level"])
