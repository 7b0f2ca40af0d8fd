"""List client keys, revoke one, or set a key's limits (by its lookup prefix, as the admin shows it)."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.utils import timezone

from accounts.budget_prices import unpriced_budget_warning
from accounts.management.base import OneLineCommand
from accounts.management.limit_options import add_limit_arguments, limit_changes, limits_json, limits_text
from accounts.models import ClientKey
from accounts.services import AccountsError, client_key_revoke, limits_update


def key_state(key: ClientKey) -> str:
    if key.revoked:
        return "revoked"
    if key.expires_at is not None and key.expires_at <= timezone.now():
        return "expired"
    return "active"


def key_json(key: ClientKey) -> dict[str, Any]:
    return {
        "prefix": key.prefix,
        "name": key.name,
        "user": key.user.get_username(),
        "state": key_state(key),
        "created_at": key.created_at.isoformat(),
        "expires_at": key.expires_at.isoformat() if key.expires_at else None,
        "last_used_at": key.last_used_at.isoformat() if key.last_used_at else None,
        "limits": limits_json(key),
    }


class Command(OneLineCommand):
    help = "Client keys: list [--user U] [--json] | revoke PREFIX | limit PREFIX [limit options]."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        listing = actions.add_parser("list", help="list keys (never their secrets)")
        listing.add_argument("--user", help="only this user's keys")
        listing.add_argument("--json", action="store_true", help="JSON, one object per key")
        revoke = actions.add_parser("revoke", help="revoke a key at once")
        revoke.add_argument("prefix")
        limit = actions.add_parser("limit", help="set a key's limits (on top of its user's)")
        limit.add_argument("prefix")
        add_limit_arguments(limit)

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        if action == "list":
            self._list(options.get("user"), as_json=options["json"])
            return
        key = self._key(options["prefix"])
        if action == "revoke":
            what = f"{key.prefix} ({key.name!r} of {key.user.get_username()})"
            if client_key_revoke(key=key):
                self.stdout.write(f"Revoked {what}.")
            else:
                when = f" at {key.revoked_at:%Y-%m-%d %H:%M} UTC" if key.revoked_at else ""
                self.stdout.write(f"{what} was already revoked{when}: nothing changed.")
            return
        changes = limit_changes(options)
        if not changes:
            raise CommandError("give at least one limit option (see --help)")
        try:
            limits_update(target=key, changes=changes)
        except AccountsError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"Limits of {key.prefix}: {limits_text(key)}.")
        self._warn_unpriced(key, changes)

    def _warn_unpriced(self, target: ClientKey, changes: dict[str, object]) -> None:
        warning = unpriced_budget_warning(target) if changes.get("budget_cost") is not None else ""
        if warning:
            self.stderr.write(warning)

    def _key(self, prefix: str) -> ClientKey:
        try:
            return ClientKey.objects.select_related("user").get(prefix=prefix.strip())
        except ClientKey.DoesNotExist:
            raise CommandError(f"no client key with prefix {prefix!r}") from None

    def _list(self, username: str | None, *, as_json: bool) -> None:
        keys = ClientKey.objects.select_related("user").order_by("user__username", "-created_at")
        if username:
            keys = keys.filter(user__username=username)
        if as_json:
            self.stdout.write(json.dumps([key_json(key) for key in keys], indent=2))
            return
        for key in keys:
            user = key.user.get_username()
            self.stdout.write(
                f"{key.prefix}  {user:<16} {key.name:<18} {key_state(key):<8} {limits_text(key)}"
            )
