"""Show or set a user's limits (they bound all the user's keys together)."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import CommandError, CommandParser

from accounts.budget_prices import unpriced_budget_warning
from accounts.management.base import OneLineCommand
from accounts.management.limit_options import add_limit_arguments, limit_changes, limits_json, limits_text
from accounts.models import User
from accounts.services import AccountsError, limits_update


class Command(OneLineCommand):
    help = "Show USERNAME's limits, or set them with the limit options."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--json", action="store_true", help="print the limits as JSON")
        add_limit_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            user = User.objects.get(username=options["username"].strip())
        except User.DoesNotExist:
            raise CommandError(f"no user {options['username']!r}") from None
        changes = limit_changes(options)
        if changes:
            try:
                limits_update(target=user, changes=changes)
            except AccountsError as exc:
                raise CommandError(str(exc)) from None
            warning = unpriced_budget_warning(user) if changes.get("budget_cost") is not None else ""
            if warning:
                self.stderr.write(warning)
        if options["json"]:
            self.stdout.write(
                json.dumps({"user": user.get_username(), "limits": limits_json(user)}, indent=2)
            )
        else:
            self.stdout.write(f"Limits of {user.get_username()}: {limits_text(user)}.")
