"""Store a Command Code API key of the team, encrypted, for ccsite to call the upstream with."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser

from accounts.management.base import OneLineCommand
from accounts.services import AccountsError, CredentialOptions, cli_auth_api_key, credential_add

DEFAULT_CLI_AUTH = Path.home() / ".commandcode" / "auth.json"


class Command(OneLineCommand):
    help = "Add an upstream Command Code credential from --api-key or a logged-in CLI's auth file."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--label", required=True)
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--api-key", help="the Command Code API key (user_...)")
        source.add_argument(
            "--from-cli-auth",
            nargs="?",
            const=str(DEFAULT_CLI_AUTH),
            metavar="PATH",
            help="import the key of a logged-in Command Code CLI (default ~/.commandcode/auth.json)",
        )
        parser.add_argument("--weight", type=int, default=1)
        parser.add_argument("--max-concurrent", type=int, default=None)
        parser.add_argument("--disabled", action="store_true", help="store it disabled")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            if options["from_cli_auth"]:
                api_key = cli_auth_api_key(Path(options["from_cli_auth"]).expanduser())
            else:
                api_key = options["api_key"]
            options_ = CredentialOptions(
                weight=options["weight"],
                enabled=not options["disabled"],
                max_concurrent=options["max_concurrent"],
            )
            credential = credential_add(label=options["label"], api_key=api_key, options=options_)
        except AccountsError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"Added upstream credential {credential.label!r} ({credential.masked_secret}).")
