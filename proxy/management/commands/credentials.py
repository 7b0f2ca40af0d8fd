"""Operate the upstream credentials from a shell: list their routing state, enable, disable,
refresh billing.

    manage.py credentials list [--json]
    manage.py credentials enable LABEL...
    manage.py credentials disable LABEL...
    manage.py credentials refresh [LABEL...]
    manage.py credentials policy [NAME|default]   # show or set the admin's routing policy
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import CommandError, CommandParser

from accounts.management.base import OneLineCommand
from accounts.models import UpstreamCredential
from accounts.services import credential_set_enabled
from proxy import routing_settings
from proxy.credential_report import credential_report_sync
from proxy.models import RoutingSettings
from proxy.routing_policies import POLICIES

POLICY_NAMES = ("auto", *POLICIES)

COLUMNS = (
    "label",
    "key",
    "state",
    "in_flight",
    "cooldown_until",
    "cooldown_reason",
    "last_used_at",
    "last_error",
)


class Command(OneLineCommand):
    help = "List upstream credentials with their routing state, enable or disable them, refresh billing."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        listing = sub.add_parser("list", help="every credential with state, cooldown, in flight, billing")
        listing.add_argument("--json", action="store_true", help="one JSON array (for scripts)")
        for name in ("enable", "disable"):
            action = sub.add_parser(name, help=f"{name} credentials by label")
            action.add_argument("labels", nargs="+", metavar="LABEL")
        refresh = sub.add_parser("refresh", help="read billing and usage from Command Code now")
        refresh.add_argument("labels", nargs="*", metavar="LABEL")
        policy = sub.add_parser("policy", help="show or set the routing policy (the admin's override)")
        policy.add_argument("name", nargs="?", choices=[*POLICY_NAMES, "default"])

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        if action == "list":
            self._list(as_json=options["json"])
        elif action in ("enable", "disable"):
            credentials = self._by_label(options["labels"])
            credential_set_enabled(credentials=credentials, enabled=action == "enable")
            for credential in credentials:
                self.stdout.write(f"{action}d {credential.label}")
        elif action == "policy":
            self._policy(options["name"])
        else:
            self._refresh(options["labels"])

    def _policy(self, name: str | None) -> None:
        row = RoutingSettings.load()
        if name is not None:
            row.policy = "" if name == "default" else name
            row.save()
            routing_settings.changed()  # every gateway process within a second
        else:
            routing_settings.reload()  # this process never served: read the row itself
        source = "set by an operator" if row.policy else "the server setting CCSITE_ROUTING_POLICY"
        self.stdout.write(f"routing policy: {routing_settings.policy()} ({source})")

    def _by_label(self, labels: list[str]) -> list[UpstreamCredential]:
        found = {c.label: c for c in UpstreamCredential.objects.filter(label__in=labels)}
        missing = [label for label in labels if label not in found]
        if missing:
            raise CommandError(f"no credential labelled {', '.join(map(repr, missing))}")
        return [found[label] for label in labels]

    def _list(self, *, as_json: bool) -> None:
        report = credential_report_sync()
        if as_json:
            self.stdout.write(json.dumps(report, indent=2))
            return
        rows = [[_cell(entry.get(column)) for column in COLUMNS] for entry in report]
        widths = [max([len(column)] + [len(row[i]) for row in rows]) for i, column in enumerate(COLUMNS)]
        self.stdout.write("  ".join(column.ljust(w) for column, w in zip(COLUMNS, widths, strict=True)))
        for row in rows:
            self.stdout.write("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))

    def _refresh(self, labels: list[str]) -> None:
        from proxy.billing import refresh_billing_sync

        credentials = self._by_label(labels) if labels else list(UpstreamCredential.objects.all())
        for label, error in refresh_billing_sync([c.pk for c in credentials]).items():
            self.stdout.write(f"{label}: {'refreshed' if not error else 'failed: ' + error}")


def _cell(value: object) -> str:
    if value is None:
        return "-"
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."
